package events

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// BucketCalls maps an agent ID to the agent's live [CallState], written by
// the poller that owns the agent (and by nobody else) from the events it
// polls; workers read it through a watched cache to check a command's call
// before every attempt (DESIGN.md guarantee 8).
const BucketCalls = "callcontrol_calls"

// CallStateKey is the key of agent's [CallState] in [BucketCalls].
func CallStateKey(agent int) string { return strconv.Itoa(agent) }

// MaxCallIDLen bounds a command's call_id: the gateway's call ID as the
// agent events carry it (e.g. "1456403549-15").
const MaxCallIDLen = 64

// ValidCallID reports whether id is 1-[MaxCallIDLen] printable ASCII
// characters without spaces.
func ValidCallID(id string) bool { return id != "" && len(id) <= MaxCallIDLen && isVisibleASCII(id) }

// CallPhase is what an agent's call is doing, as its events tell.
type CallPhase string

const (
	CallRinging    CallPhase = "ringing"     // AgentEvent_Ringing / Customer_Alerting, not yet talking
	CallTalking    CallPhase = "talking"     // AgentEvent_Talking
	CallHeld       CallPhase = "held"        // AgentEvent_Hold (also the customer's call during two-party help)
	CallHelp       CallPhase = "help"        // a help call to another agent (Talking with type "assistant")
	CallThreeParty CallPhase = "three_party" // AgentEvent_Conference
)

// Call is one call of an agent in its [CallState].
type Call struct {
	CallID string `json:"call_id"`
	// Parties are the numbers the events named for the call besides the
	// agent's own work number (caller, called, otherPhone, partner,
	// Customer_Release numbers that have not left).
	Parties []string  `json:"parties"`
	Phase   CallPhase `json:"phase"`
	// Since is when the poller received the call's first event (its clock,
	// not the gateway's): a conservative start time, never earlier than
	// the real one by more than the clocks' skew.
	Since time.Time `json:"since"`
}

// HasParty reports whether number is one of c's parties.
func (c *Call) HasParty(number string) bool { return slices.Contains(c.Parties, number) }

// EndedCall is a call that ended recently (its AgentEvent_Call_Release).
type EndedCall struct {
	CallID  string    `json:"call_id"`
	EndedAt time.Time `json:"ended_at"`
}

// MaxEndedCalls bounds [CallState.Ended].
const MaxEndedCalls = 8

// CallState is an agent's live call state in [BucketCalls], keyed by
// [CallStateKey]. Its writer is the agent's poller owner; a worker trusts
// it only while Polling is true and ObservedAt is recent (its
// --call-state-max-age), and otherwise asks the gateway's call-info query.
type CallState struct {
	AgentID int    `json:"agent_id"`
	Owner   string `json:"owner"` // the poller instance that wrote it
	// Polling is false once the owner stopped polling the agent (hand-off,
	// session invalid, signed out, shutdown): the state is then history.
	Polling bool `json:"polling"`
	// ObservedAt: every gateway event of the agent generated before this
	// time (the owner's clock) is reflected here. While a long poll is
	// outstanding the owner may advance it without an event (the gateway
	// answers a long poll at once when an event is queued).
	ObservedAt time.Time `json:"observed_at"`
	// Calls are the agent's calls, oldest first; the last one is the
	// gateway's "last call", the only one whose parties disconnect can
	// release. Empty: no call.
	Calls []Call `json:"calls"`
	// Ended are the most recently ended calls, newest last, at most
	// [MaxEndedCalls].
	Ended       []EndedCall `json:"ended,omitempty"`
	LastEvent   string      `json:"last_event,omitempty"`   // eventType of the last event applied
	LastEventAt time.Time   `json:"last_event_at,omitzero"` // when the owner received it
}

// LastCall returns the agent's last call, or nil when it has none.
func (s *CallState) LastCall() *Call {
	if len(s.Calls) == 0 {
		return nil
	}
	return &s.Calls[len(s.Calls)-1]
}

// Find returns the call with id among s.Calls, or nil.
func (s *CallState) Find(id string) *Call {
	for i := range s.Calls {
		if s.Calls[i].CallID == id {
			return &s.Calls[i]
		}
	}
	return nil
}

// EndedCallAt returns when call id ended, if s remembers it.
func (s *CallState) EndedCallAt(id string) (time.Time, bool) {
	for _, e := range s.Ended {
		if e.CallID == id {
			return e.EndedAt, true
		}
	}
	return time.Time{}, false
}

// CallMismatch says why a call is not an agent's last call with a number
// in it: Reason is [ReasonCallEnded], [ReasonCallMismatch] or
// [ReasonNotAParty], Detail names the call.
type CallMismatch struct {
	Reason string
	Detail string
}

func (e *CallMismatch) Error() string { return e.Reason + ": " + e.Detail }

// CheckCall reports, by s, whether call is the agent's last call with
// number one of its parties: nil if so, else why not. It is the rule every
// attempt of a call-scoped command is held to (DESIGN.md #8).
func (s *CallState) CheckCall(call, number string) *CallMismatch {
	last := s.LastCall()
	switch {
	case last != nil && last.CallID == call:
		if last.HasParty(number) {
			return nil
		}
		return &CallMismatch{ReasonNotAParty, fmt.Sprintf("the number is not a party of call %s", call)}
	case s.Find(call) != nil:
		return &CallMismatch{ReasonCallMismatch, fmt.Sprintf("call %s is not the agent's last call (%s is)", call, last.CallID)}
	}
	if at, ok := s.EndedCallAt(call); ok {
		return &CallMismatch{ReasonCallEnded, fmt.Sprintf("call %s ended at %s", call, at.UTC().Format(time.RFC3339))}
	}
	if last != nil {
		return &CallMismatch{ReasonCallEnded, fmt.Sprintf("call %s is not among the agent's calls (its last call is %s)", call, last.CallID)}
	}
	return &CallMismatch{ReasonCallEnded, fmt.Sprintf("call %s is not up: the agent has no call", call)}
}
