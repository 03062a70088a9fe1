package events

import (
	"encoding/json"
	"time"
)

// AgentEvent is a gateway agent event as republished by the poller on
// AgentEventSubject(AgentID, Type), with a Nats-Msg-Id derived from the
// event so that a retried publish is stored once.
type AgentEvent struct {
	AgentID int    `json:"agent_id"`
	Type    string `json:"event_type"` // the gateway's eventType, e.g. AgentEvent_Customer_Release
	// CallID and Number are read from Content when present (any key casing).
	CallID string `json:"call_id,omitempty"`
	Number string `json:"number,omitempty"`
	// Content is the gateway's content as received: null, a string or an object.
	Content     json.RawMessage `json:"content"`
	GeneratedAt time.Time       `json:"generated_at,omitzero"` // the gateway's eventGenTime, when sent
	ReceivedAt  time.Time       `json:"received_at"`           // when the poller received it
	// GeneratedAtUnparsed: the gateway sent an eventGenTime that is not a
	// time (its value is not kept); GeneratedAt is then absent, and the
	// event is dated by ReceivedAt.
	GeneratedAtUnparsed bool `json:"generated_at_unparsed,omitempty"`
}

// Gateway event types the confirmation logic uses.
const (
	EventCallRelease     = "AgentEvent_Call_Release"
	EventCustomerRelease = "AgentEvent_Customer_Release"
)

// Pending is a disconnect that was accepted and awaits its release event,
// stored under PendingKey in [BucketPending].
type Pending struct {
	CommandID     string `json:"command_id"`
	AgentID       int    `json:"agent_id"`
	Number        string `json:"number"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// CallID is the call the command was scoped to (its call_id, or the
	// call a plain command was pinned to, as its result names it): only a
	// release of Number in that call confirms it. Empty (a worker with
	// --skip-call-check, or an older one): a release in any call does.
	CallID     string    `json:"call_id,omitempty"`
	IssuedAt   time.Time `json:"issued_at"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Deadline: without a matching release by then, the command is
	// reported unconfirmed.
	Deadline time.Time `json:"deadline"`
	// Traceparent is the W3C trace context of the worker's handling of the
	// command (absent when the command carried none and no tracer records
	// spans), so that the confirmation is published in the same trace.
	Traceparent string `json:"traceparent,omitempty"`
}

// ConfirmationStatus is the outcome of waiting for a release event.
type ConfirmationStatus string

const (
	// ConfirmationConfirmed: a release event for the party arrived.
	ConfirmationConfirmed ConfirmationStatus = "confirmed"
	// ConfirmationUnconfirmed: none arrived before the pending deadline.
	ConfirmationUnconfirmed ConfirmationStatus = "unconfirmed"
)

// Confirmation correlates an accepted disconnect with the release event the
// gateway raised for it. Each accepted command gets exactly one, on
// ConfirmationSubject(Status) with Nats-Msg-Id ConfirmationMsgID(CommandID).
type Confirmation struct {
	CommandID     string             `json:"command_id"`
	CorrelationID string             `json:"correlation_id,omitempty"`
	AgentID       int                `json:"agent_id"`
	Number        string             `json:"number"`
	Status        ConfirmationStatus `json:"status"`
	EventType     string             `json:"event_type,omitempty"` // the release event that matched
	CallID        string             `json:"call_id,omitempty"`
	IssuedAt      time.Time          `json:"issued_at"`
	AcceptedAt    time.Time          `json:"accepted_at"`
	ReleasedAt    time.Time          `json:"released_at,omitzero"` // event time (eventGenTime, else received)
	ConfirmedAt   time.Time          `json:"confirmed_at"`         // when this was decided
	// LatencyMillis is ReleasedAt - IssuedAt: from the requester issuing the
	// command to the party being released (confirmed only).
	LatencyMillis int64 `json:"latency_ms,omitempty"`
}
