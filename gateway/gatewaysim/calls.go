package gatewaysim

import (
	"fmt"
	"slices"
	"time"
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

// Call types ("feature" of AgentEvent_Talking, "callfeature" of the
// call-info query): 0, 6 and 7 are confirmed (EN:cec_07_4245); 51 and 52
// come from Huawei's C# demo (INTER_TWO_HELP, INTER_THREE_HELP).
const (
	featureInbound    = 0
	featureInternal   = 6
	featureOutbound   = 7
	featureHelp       = 51
	featureThreeParty = 52
)

// call is one call of an agent. The agent itself is not in parties.
type call struct {
	id       string
	customer string   // the original party, called back by a redial
	parties  []string // numbers connected besides the agent
	held     bool

	caller, called string    // as AgentEvent_Talking and the call-info query report them
	feature        int       // call type, see featureInbound
	began          time.Time // when it was answered, by Config.Now
	ended          time.Time // when it ended; zero while it lasts
	lastSince      time.Time // when the call after it ended, making it the last call again; zero before
	gen            int       // the customer's call generation; 0 for a help call
	redial         bool      // started by a redial (automatic or Sim.Redial)

	// peer is the same call as another simulated agent has it (inner
	// help), or nil. helper marks the helper's side, which may release only
	// its own number (EN/CN:cec_07_1248).
	peer   *leg
	helper bool
}

// leg is one agent's side of a call.
type leg struct {
	a *agent
	c *call
}

// becameLast is when c became the agent's last call: when it began, or
// when the call after it ended.
func (c *call) becameLast() time.Time {
	if c.lastSince.After(c.began) {
		return c.lastSince
	}
	return c.began
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
// agent already has an active (not held) call. Every call gets a new ID.
func (s *Sim) StartCall(agentID int, customer string) (callID string, err error) {
	if !validNumber(customer) {
		return "", ErrBadNumber
	}
	err = s.withAgent(agentID, func(a *agent) error {
		c, err := s.startCallLocked(a, customer, false, false)
		if err == nil {
			callID = c.id
		}
		return err
	})
	return callID, err
}

// startCallLocked starts an inbound call from customer; ring raises
// AgentEvent_Ringing before AgentEvent_Talking (auto-answer).
func (s *Sim) startCallLocked(a *agent, customer string, ring, redial bool) (*call, error) {
	if active(a) != nil {
		return nil, ErrBusy
	}
	c := s.newCallLocked(customer, redial)
	c.parties = []string{customer}
	c.caller, c.called, c.feature = customer, a.workNo, featureInbound
	a.calls = append(a.calls, c)
	if ring {
		s.pushLocked(a, EventRinging, talkingInfo(c, "main"))
	}
	s.pushLocked(a, EventTalking, talkingInfo(c, "main"))
	return c, nil
}

// newCallLocked returns a customer's new call: a new ID, the next
// generation of the customer, answered now.
func (s *Sim) newCallLocked(customer string, redial bool) *call {
	s.generations[customer]++
	if redial {
		s.redials.Add(1)
	}
	return &call{id: s.newCallID(), customer: customer, gen: s.generations[customer], redial: redial, began: s.now()}
}

// talkingInfo is the content of AgentEvent_Talking and AgentEvent_Ringing
// (EN:cec_07_1355, CN:cec_07_0513).
func talkingInfo(c *call, typ string) map[string]any {
	return map[string]any{
		"caller": c.caller, "called": c.called, "callid": c.id,
		"type": typ, "feature": c.feature, "mediaAbility": 1,
	}
}

// newCallID returns an ID like "1700000000-17", unique for the
// simulator's lifetime (the sequence never repeats).
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

// last returns the agent's last call, held or not, or nil.
func last(a *agent) *call {
	if n := len(a.calls); n > 0 {
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

// EndCall ends a call of the agent as if every other party hung up (the
// customer hangs up): each party's AgentEvent_Customer_Release, then
// AgentEvent_Call_Release; a simulated helper's side of it ends too. callID
// "" means the agent's last call. It fails with [ErrNoCall] when the agent
// has no such call. Like [Sim.CustomerHangup] it is not counted by
// [Sim.Executed], and a redial may follow.
func (s *Sim) EndCall(agentID int, callID string) (ended string, err error) {
	err = s.withAgent(agentID, func(a *agent) error {
		c := last(a)
		if callID != "" {
			c = findCall(a, callID)
		}
		if c == nil {
			return ErrNoCall
		}
		ended = c.id
		for len(c.parties) > 0 {
			s.releaseLocked(a, c, c.parties[0])
		}
		return nil
	})
	return ended, err
}

// findCall returns the agent's call with the given ID, or nil.
func findCall(a *agent, id string) *call {
	for _, c := range a.calls {
		if c.id == id {
			return c
		}
	}
	return nil
}
