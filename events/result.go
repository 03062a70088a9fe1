package events

import "time"

// Status is the terminal state of a command. Every command ends in exactly
// one result with one of these statuses.
type Status string

const (
	// StatusAccepted: the gateway released the party (retcode 0), or a
	// retry found it already released after an earlier attempt of the same
	// command may have reached the gateway (Reason "already_released").
	StatusAccepted Status = "accepted"
	// StatusRejected: the command was invalid and never sent. Reason names
	// the field and the rule.
	StatusRejected Status = "rejected"
	// StatusFailed: the gateway refused the command, the session was
	// invalid, or retries ran out. Reason and RetCode say why.
	StatusFailed Status = "failed"
	// StatusExpired: the command's deadline passed before it could be
	// executed. It was not sent after that deadline.
	StatusExpired Status = "expired"
)

// Result reports the terminal outcome of one command. It is published on
// ResultSubject(Status) with Nats-Msg-Id ResultMsgID(CommandID).
type Result struct {
	CommandID     string `json:"command_id"`
	AgentID       int    `json:"agent_id,omitempty"`
	Number        string `json:"number,omitempty"`
	Status        Status `json:"status"`
	Reason        string `json:"reason,omitempty"`
	RetCode       string `json:"retcode,omitempty"` // gateway retcode of the last answer
	Attempts      int    `json:"attempts"`          // gateway requests sent for this command
	CorrelationID string `json:"correlation_id,omitempty"`
	RequestedBy   string `json:"requested_by,omitempty"`
	// CallID is the call the command was scoped to: its call_id, or for a
	// plain command the call the worker pinned it to (DESIGN.md #8).
	CallID string `json:"call_id,omitempty"`

	IssuedAt    time.Time `json:"issued_at,omitzero"`  // from the command, or when stored
	StoredAt    time.Time `json:"stored_at,omitzero"`  // when JetStream stored the command
	ExpiresAt   time.Time `json:"expires_at,omitzero"` // the deadline the worker applied
	CompletedAt time.Time `json:"completed_at"`        // when the outcome was decided
	// GatewayMillis is the time spent in gateway requests, summed over attempts.
	GatewayMillis int64 `json:"gateway_ms"`
}

// Reasons used by the worker beside gateway messages.
const (
	ReasonAlreadyReleased = "already_released"
	ReasonNoSession       = "no_session"
	// ReasonSessionInvalid: the gateway rejected the agent's session (its
	// GUID); the agent must be signed in again.
	ReasonSessionInvalid = "session_invalid"
	ReasonMaxDeliveries  = "max_deliveries"
	// ReasonOutcomeUnknown prefixes the reason of a command that ended
	// failed or expired after a request that got no answer (a timeout, a
	// reset, a 5xx): the gateway may still have executed it, even later,
	// e.g. when it was frozen. Its confirmation (or AgentEvent_*_Release
	// events) tells what happened.
	ReasonOutcomeUnknown = "outcome_unknown"

	// Call-scope reasons (DESIGN.md #8): the command was not sent because
	// its call is not the agent's last call any more, and it is never
	// retried. Each prefixes a reason that names the call, e.g.
	// "call_ended: call 1700000000-17 ended".
	ReasonCallEnded    = "call_ended"    // the call ended (or, for a plain command, no call was current when it was stored)
	ReasonCallMismatch = "call_mismatch" // the agent's last call is another call (e.g. a help call; the command's call is held)
	ReasonNotAParty    = "not_a_party"   // number is not a party of the call
	// ReasonCallUnknown: neither the live call state nor the gateway's
	// call-info query could say which call the agent is on before the
	// deadline, so the command was never sent blind.
	ReasonCallUnknown = "call_unknown"
)
