// Package soak is callcontrol's seeded, randomized soak test of the whole
// system (issue "Hardening"), in the spirit of Jepsen's generators and
// checkers: a generator mixes every kind of command with every fault
// against the real parts (NATS, the simulator over HTTPS, worker and
// poller processes) and records a History; [Check] then verifies the
// guarantees on that history, with the simulator's log of every request
// as the ground truth. `make soak` runs it (build tag soak).
package soak

import (
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// History is everything one soak run observed.
type History struct {
	Seed     int64
	Started  time.Time
	Finished time.Time
	// Commands are every command the generator published, valid or not.
	Commands []Command
	// Results are every message stored in CALLCONTROL_RESULTS.
	Results []Observed[events.Result]
	// Confirmations are every confirmation stored in CALLCONTROL_EVENTS.
	Confirmations []Observed[events.Confirmation]
	// Requests are the simulator's log of every disconnect request it got
	// (executed or not, with the call a release was taken from).
	Requests []gatewaysim.Disconnect
	// Faults are the faults injected, in order.
	Faults []Fault
	// Logs are every line every process wrote; Streams every message body
	// and header of every stream; Metrics every /metrics page scraped.
	// The checker looks for Secrets in all three.
	Logs    []string
	Streams []string
	Metrics []string
	// Secrets are the GUIDs, passwords and tokens of the run.
	Secrets []string
}

// Command is one published command and what the generator meant by it.
type Command struct {
	CommandID string
	AgentID   int
	Number    string
	// CallID is the command's call_id ("" for a plain command).
	CallID string
	// TraceID is the W3C trace ID the command was published with: the
	// simulator's log carries it on every request of the command
	// (Disconnect.Traceparent), which maps requests to commands.
	TraceID string
	// Published is when its publish was acknowledged (Stored: when the
	// stream stored it); Deadline the deadline a worker must apply.
	Published time.Time
	Stored    time.Time
	Deadline  time.Time
	// Valid is false for a malformed or hostile payload: it must end
	// rejected and never be sent.
	Valid bool
	// Kind names what the generator made it: "plain", "scoped",
	// "duplicate", "republished", "expired", "about_to_expire",
	// "malformed", "hostile", "replay", "skewed".
	Kind string
	// ReplayOf is the command a dlq replay republished ("" otherwise).
	ReplayOf string
	// MsgID is the Nats-Msg-Id it was published with: the command_id,
	// another ID for a "republished" one (which must end rejected, its
	// result filed under this ID), `dlq replay`'s replay-<command_id>-<n>
	// for a replay, or the only ID of a payload without a usable
	// command_id.
	MsgID string
	// Seq is the stream sequence of the publish acknowledgement (for a
	// duplicate: of the message the stream already held); Duplicate the
	// acknowledgement's duplicate flag: the stream did not store it again.
	// Seq is 0 when no acknowledgement arrived (then Stored is zero).
	Seq       uint64
	Duplicate bool
	// Payload is the message body as published.
	Payload string
}

// Observed is one stored message.
type Observed[T any] struct {
	Seq     uint64
	Stored  time.Time
	Subject string
	MsgID   string
	Value   T
}

// Fault is one injected fault.
type Fault struct {
	At     time.Time
	Kind   string // "worker_sigkill", "worker_sigterm", "poller_sigkill", "nats_restart", "gateway_5xx", ...
	Target string
	Until  time.Time // zero for an instant fault
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string
	CommandID string
	Detail    string
}

// Report is what Check found.
type Report struct {
	Commands   int
	Faults     int
	Checked    map[string]int // invariant -> how many commands/items it was checked on
	Violations []Violation

	// Added for the checker: the run's seed, the simulator's request log
	// length, and the accepted results still within their confirmation
	// window when the run ended (Options.ConfirmWithin; not violations).
	Seed         int64
	Requests     int
	PendingAtEnd int
	// InWindow: releases taken from another call that began within
	// Options.CheckWindow before the request reached the gateway: the
	// window no call check closes (README "Call scope"), counted and
	// listed, not violations.
	InWindow []Violation
}
