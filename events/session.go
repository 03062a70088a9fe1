package events

import "time"

// Session is the value stored under an agent's ID in [BucketSessions]: the
// GUID to send to the gateway for that agent. Whoever signs the agent in
// (`callcontrol signin`, or any system that puts this JSON under the agent's
// ID) creates it; the poller replaces the GUID whenever the gateway rotates
// it and marks the session invalid on a session error; workers read it
// through a watched cache. The GUID is a secret and is never logged.
type Session struct {
	GUID      string       `json:"guid"`
	AuthMode  int          `json:"auth_mode,omitempty"` // 1 static, 2 rotating (default 2 when unknown)
	Node      string       `json:"node,omitempty"`      // the ".AgentGatewayN" suffix of the GUID, for operators
	State     SessionState `json:"state,omitempty"`     // "" means active
	Reason    string       `json:"reason,omitempty"`    // why it is invalid
	UpdatedAt time.Time    `json:"updated_at"`
}

// SessionState is the state of a [Session].
type SessionState string

const (
	SessionActive  SessionState = "active"
	SessionInvalid SessionState = "invalid" // the gateway refused the GUID; sign in again
)

// Usable reports whether workers and pollers may use the session.
func (s *Session) Usable() bool {
	return s.GUID != "" && (s.State == "" || s.State == SessionActive)
}

// SessionEventKind says what happened to a session.
type SessionEventKind string

const (
	SessionRegistered  SessionEventKind = "registered" // a new GUID was stored (sign-in)
	SessionRotated     SessionEventKind = "rotated"    // the gateway issued a new GUID (AUTHMODE 2)
	SessionInvalidated SessionEventKind = "invalid"    // a session error: the GUID no longer works
	SessionSignedOut   SessionEventKind = "signed_out" // signed out (by us, an operator or the gateway)
)

// SessionEvent is published on SessionEventSubject(agent, kind). It never
// carries the GUID.
type SessionEvent struct {
	AgentID int              `json:"agent_id"`
	Kind    SessionEventKind `json:"kind"`
	Reason  string           `json:"reason,omitempty"` // e.g. "retcode 100-006"
	RetCode string           `json:"retcode,omitempty"`
	At      time.Time        `json:"at"`
}
