package gatewaysim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Event types raised by calls.
const (
	EventRinging          = "AgentEvent_Ringing"
	EventTalking          = "AgentEvent_Talking"
	EventHold             = "AgentEvent_Hold"
	EventCustomerAlerting = "AgentEvent_Customer_Alerting"
	EventConference       = "AgentEvent_Conference"
	EventCustomerRelease  = "AgentEvent_Customer_Release"
	EventCallRelease      = "AgentEvent_Call_Release"
)

// call is one call of an agent. The agent itself is not in parties.
type call struct {
	id       string
	customer string   // the original party, called back by RedialAfter
	parties  []string // numbers connected besides the agent
	held     bool
}

func (c *call) has(number string) bool { return slices.Contains(c.parties, number) }

// withAgent runs fn on a signed-in agent under the lock.
func (s *Sim) withAgent(id int, fn func(a *agent) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	a := s.agents[id]
	if a == nil {
		return ErrUnknownAgent
	}
	s.expireIdleLocked(a, s.now())
	if !a.signedIn {
		return ErrNotSignedIn
	}
	return fn(a)
}

// StartCall connects a signed-in agent with customer in a new two-party
// inbound call and raises AgentEvent_Talking. Calls the agent holds stay
// (the new call becomes the last call). It fails with [ErrBusy] when the
// agent already has an active (not held) call.
func (s *Sim) StartCall(agentID int, customer string) (callID string, err error) {
	if !validNumber(customer) {
		return "", ErrBadNumber
	}
	err = s.withAgent(agentID, func(a *agent) error {
		c, err := s.startCallLocked(a, customer, false)
		if err == nil {
			callID = c.id
		}
		return err
	})
	return callID, err
}

func (s *Sim) startCallLocked(a *agent, customer string, ring bool) (*call, error) {
	if active(a) != nil {
		return nil, ErrBusy
	}
	c := &call{id: s.newCallID(), customer: customer, parties: []string{customer}}
	a.calls = append(a.calls, c)
	info := map[string]any{
		"caller": customer, "called": a.workNo, "callid": c.id,
		"type": "main", "feature": 0, "mediaAbility": 1,
	}
	if ring {
		s.pushLocked(a, EventRinging, info)
	}
	s.pushLocked(a, EventTalking, info)
	return c, nil
}

// newCallID returns an ID like "1700000000-17".
func (s *Sim) newCallID() string {
	return fmt.Sprintf("%d-%d", s.now().Unix(), s.seq.Add(1))
}

// active returns the agent's active call: the last call unless it is held.
func active(a *agent) *call {
	if n := len(a.calls); n > 0 && !a.calls[n-1].held {
		return a.calls[n-1]
	}
	return nil
}

// Hold holds the agent's active call and raises AgentEvent_Hold. The held
// call stays the last call, so its parties can still be disconnected.
func (s *Sim) Hold(agentID int) error {
	return s.withAgent(agentID, func(a *agent) error {
		c := active(a)
		if c == nil {
			return ErrNoCall
		}
		c.held = true
		s.pushLocked(a, EventHold, c.id)
		return nil
	})
}

// InnerHelp asks agent helper for help on the active call. Two-party: the
// call is held (AgentEvent_Hold) and a new help call to the helper's work
// number becomes the last call. Three-party: the helper joins the active
// call (AgentEvent_Conference).
func (s *Sim) InnerHelp(agentID, helper int, threeParty bool) error {
	helperNo := strconv.Itoa(helper)
	return s.withAgent(agentID, func(a *agent) error {
		c := active(a)
		if c == nil {
			return ErrNoCall
		}
		if threeParty {
			c.parties = append(c.parties, helperNo)
			s.pushConferenceLocked(a, c)
			return nil
		}
		c.held = true
		s.pushLocked(a, EventHold, c.id)
		h := &call{id: s.newCallID(), customer: c.customer, parties: []string{helperNo}}
		a.calls = append(a.calls, h)
		s.pushLocked(a, EventCustomerAlerting, map[string]any{
			"callid": h.id, "otherPhone": helperNo, "otherPhoneWorkno": helperNo, "type": "assistant",
		})
		s.pushLocked(a, EventTalking, map[string]any{
			"caller": a.workNo, "called": helperNo, "callid": h.id,
			"type": "assistant", "feature": 6, "mediaAbility": 1,
		})
		return nil
	})
}

// ConfJoin merges the most recently held call into the active call, which
// becomes one three-party call (AgentEvent_Conference). It fails with
// [ErrNoCall] without an active call and [ErrNoHeldCall] without a held one.
func (s *Sim) ConfJoin(agentID int) error {
	return s.withAgent(agentID, func(a *agent) error {
		c := active(a)
		if c == nil {
			return ErrNoCall
		}
		i := len(a.calls) - 2
		if i < 0 {
			return ErrNoHeldCall
		}
		h := a.calls[i]
		c.parties = slices.Concat(h.parties, c.parties)
		c.customer = h.customer
		a.calls = slices.Delete(a.calls, i, i+1)
		s.pushConferenceLocked(a, c)
		return nil
	})
}

func (s *Sim) pushConferenceLocked(a *agent, c *call) {
	s.pushLocked(a, EventConference, map[string]any{
		"callid": c.id, "partner": strings.Join(c.parties, ","),
	})
}

// CustomerHangup makes party number hang up by itself, from whichever call
// of the agent it is in. It raises the same events as a disconnect but is
// not counted by [Sim.Executed].
func (s *Sim) CustomerHangup(agentID int, number string) error {
	return s.withAgent(agentID, func(a *agent) error {
		for i := len(a.calls) - 1; i >= 0; i-- {
			if c := a.calls[i]; c.has(number) {
				s.releaseLocked(a, c, number)
				return nil
			}
		}
		return ErrNotParty
	})
}

// disconnectLocked applies the last-call rule and releases number. It
// returns the retcode and whether a party was released.
func (s *Sim) disconnectLocked(a *agent, number string) (string, bool) {
	if len(a.calls) == 0 {
		return rcNoCall, false
	}
	if last := a.calls[len(a.calls)-1]; last.has(number) {
		s.releaseLocked(a, last, number)
		return rcOK, true
	}
	for _, c := range a.calls {
		if c.has(number) {
			return rcNotInLastCall, false
		}
	}
	return rcNotInCall, false
}

// releaseLocked removes number from c and raises Customer_Release. A call
// left with only the agent ends with Call_Release; when it was the agent's
// only call, RedialAfter may bring the customer back.
func (s *Sim) releaseLocked(a *agent, c *call, number string) {
	c.parties = slices.DeleteFunc(c.parties, func(p string) bool { return p == number })
	s.pushLocked(a, EventCustomerRelease, map[string]any{"callid": c.id, "number": number})
	if len(c.parties) > 0 {
		return
	}
	a.calls = slices.DeleteFunc(a.calls, func(x *call) bool { return x == c })
	s.pushLocked(a, EventCallRelease, c.id)
	if len(a.calls) == 0 {
		s.scheduleRedialLocked(a, c.customer)
	}
}
