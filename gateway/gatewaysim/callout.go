package gatewaysim

import (
	"encoding/json"
	"io"
	"net/http"
)

// calloutBody is the part of the callout body (PUT voicecall/{agentid}/callout:
// called, caller, skillid, callappdata, callcontrolid, mediaability [C:
// DG:cec_05_4029]) the simulator reads; other fields are ignored.
type calloutBody struct {
	Called string `json:"called"`
	Caller string `json:"caller"`
}

// Callout makes the signed-in agent call number called (an outbound call):
// AgentEvent_Customer_Alerting while it rings, then AgentEvent_Talking with
// feature 7 once answered [C: event contents EN:cec_07_1356, 1355]; here
// the customer answers at once [I]. caller is the calling number shown to
// the customer, "" for the agent's work number [I]. The call is the
// customer's next generation, like an inbound one. It fails with
// [ErrBadNumber] for a number that is not 1..24 digits and [ErrBusy] when
// the agent has an active call.
func (s *Sim) Callout(agentID int, called, caller string) (callID string, err error) {
	if !validNumber(called) || (caller != "" && !validNumber(caller)) {
		return "", ErrBadNumber
	}
	err = s.withAgent(agentID, func(a *agent) error {
		c, err := s.calloutLocked(a, called, caller)
		if err == nil {
			callID = c.id
		}
		return err
	})
	return callID, err
}

func (s *Sim) calloutLocked(a *agent, called, caller string) (*call, error) {
	if active(a) != nil {
		return nil, ErrBusy
	}
	if caller == "" {
		caller = a.workNo
	}
	c := s.newCallLocked(called, false)
	c.parties = []string{called}
	c.caller, c.called, c.feature = caller, called, featureOutbound
	a.calls = append(a.calls, c)
	s.pushLocked(a, EventCustomerAlerting, map[string]any{
		"callid": c.id, "otherPhone": called, "otherPhoneWorkno": "", "type": "main",
	})
	s.pushLocked(a, EventTalking, talkingInfo(c, "main"))
	return c, nil
}

// handleCallout serves PUT voicecall/{agentid}/callout. Its result is the
// new call's ID [I: as innerhelp's is, EN:cec_07_1236]. A called number
// that is not 1..24 digits gets 200-001 (C# demo: "the number dialed by
// the agent is incorrect"); an agent with an active call gets 100-007 [I:
// no code is documented]; a body that is not JSON 000-002.
func (s *Sim) handleCallout(w http.ResponseWriter, r *http.Request) {
	id, ok := parseAgentID(r.PathValue("agentid"))
	if !ok {
		s.write(w, r, reply{retcode: rcBadParam})
		return
	}
	var body calloutBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	okBody := err == nil && json.Unmarshal(data, &body) == nil
	guid := r.Header.Get("Guid")
	s.write(w, r, s.guarded(id, func() reply {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, rc := s.authLocked(id, guid)
		switch {
		case rc != "":
			return reply{retcode: rc}
		case !okBody:
			return reply{retcode: rcBadParam}
		case !validNumber(body.Called) || (body.Caller != "" && !validNumber(body.Caller)):
			return reply{retcode: rcBadCalled}
		}
		c, err := s.calloutLocked(a, body.Called, body.Caller)
		if err != nil {
			return reply{retcode: rcInternal}
		}
		return reply{retcode: rcOK, result: c.id}
	}))
}
