package events

import (
	"strconv"
	"strings"
)

// Subjects. Every subject callcontrol uses starts with "callcontrol.".
const (
	// SubjectDisconnect is where disconnect commands are published.
	SubjectDisconnect = "callcontrol.disconnect"
	// SubjectResults is the prefix of result subjects: a result is published
	// on SubjectResults + "." + status, e.g. "callcontrol.results.accepted".
	SubjectResults = "callcontrol.results"
	// SubjectDeadLetter receives a copy of every command the worker gave up
	// on (failed, expired, rejected, or out of deliveries), with the reason
	// in [HeaderReason].
	SubjectDeadLetter = "callcontrol.dlq.disconnect"
	// SubjectMaxDeliveries is the JetStream advisory raised when a command
	// ran out of deliveries with no worker acknowledging it (each worker
	// that got it died). It is stored in [StreamDeadLetter], and a worker
	// turns it into a failed result.
	SubjectMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamCommands + "." + ConsumerWorkers
	// SubjectAgentEvents is the prefix of republished gateway events:
	// AgentEventSubject gives "callcontrol.events.<agent_id>.<eventType>".
	SubjectAgentEvents = "callcontrol.events"
	// SubjectConfirmations is the prefix of confirmations:
	// "callcontrol.confirmations.confirmed" or ".unconfirmed".
	SubjectConfirmations = "callcontrol.confirmations"
	// SubjectSessionEvents is the prefix of session events:
	// "callcontrol.sessions.<agent_id>.<kind>" (see [SessionEvent]).
	SubjectSessionEvents = "callcontrol.sessions"
)

// Streams and key-value buckets, created or updated idempotently at start.
const (
	// StreamCommands holds [SubjectDisconnect].
	StreamCommands = "CALLCONTROL_COMMANDS"
	// StreamResults holds [SubjectResults].>.
	StreamResults = "CALLCONTROL_RESULTS"
	// StreamDeadLetter holds [SubjectDeadLetter] and [SubjectMaxDeliveries].
	StreamDeadLetter = "CALLCONTROL_DLQ"
	// StreamEvents holds [SubjectAgentEvents].>, [SubjectConfirmations].>
	// and [SubjectSessionEvents].>: everything the pollers observe, kept
	// for analytics to read from the start.
	StreamEvents = "CALLCONTROL_EVENTS"
	// ConsumerWorkers is the durable pull consumer all worker replicas share.
	ConsumerWorkers = "workers"
	// ConsumerExhausted is the durable consumer of [SubjectMaxDeliveries].
	ConsumerExhausted = "exhausted"

	// BucketLedger maps command_id to its execution record (idempotency).
	BucketLedger = "callcontrol_ledger"
	// BucketSessions maps agent_id to the agent's current [Session].
	BucketSessions = "callcontrol_sessions"
	// BucketLeases maps "agent.<agent_id>" to the worker holding the agent.
	BucketLeases = "callcontrol_leases"
	// BucketPending maps PendingKey(agent, command_id) to a [Pending]
	// confirmation: written by the worker when a disconnect is accepted,
	// removed by the poller when it confirms (or gives up on) it.
	BucketPending = "callcontrol_pending"
	// BucketPollers holds poller membership ("member.<instance>") and the
	// per-agent poll leases ("agent.<agent_id>" -> instance).
	BucketPollers = "callcontrol_pollers"
)

// Header names. Nats-Msg-Id is JetStream's de-duplication header: commands
// carry their command_id in it, results carry [ResultMsgID].
const (
	HeaderMsgID         = "Nats-Msg-Id"
	HeaderCommandID     = "Callcontrol-Command-Id"
	HeaderCorrelationID = "Callcontrol-Correlation-Id"
	HeaderStatus        = "Callcontrol-Status"
	HeaderReason        = "Callcontrol-Reason"
	// HeaderReplayOf is set by `callcontrol dlq replay` on a replayed
	// command: the dead-letter stream sequence it was replayed from. The
	// replay's result and dead letter then get IDs of their own
	// ([ReplayMsgIDSuffix]), so they are not de-duplicated against the
	// first run's.
	HeaderReplayOf = "Callcontrol-Replay-Of"
	// HeaderReplayStoredAt is set by `callcontrol dlq replay` to when the
	// first run of the command was stored (RFC 3339): a worker pins a
	// replayed plain command to the agent's call as of then, never to a
	// call that began after the command was first stored.
	HeaderReplayStoredAt = "Callcontrol-Replay-Stored-At"
	// HeaderTraceparent and HeaderTracestate carry W3C trace context
	// (https://www.w3.org/TR/trace-context/), lower case as in the spec. A
	// command may carry them; its result, dead letter and confirmation then
	// carry the same trace ID. A malformed value is ignored.
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// ReplayMsgIDSuffix returns what is appended to the Nats-Msg-Id of the
// result and the dead letter of a command carrying HeaderReplayOf value
// seq: "-replay-<seq>", or "" when seq is not a decimal sequence number.
func ReplayMsgIDSuffix(seq string) string {
	if seq == "" || len(seq) > 20 || strings.Trim(seq, "0123456789") != "" {
		return ""
	}
	return "-replay-" + seq
}

// ResultSubject returns the subject a result with status s is published on.
func ResultSubject(s Status) string { return SubjectResults + "." + string(s) }

// ResultMsgID returns the Nats-Msg-Id of the result of command id, so that a
// result re-published after a crash or redelivery is de-duplicated.
func ResultMsgID(commandID string) string { return "result-" + commandID }

// AgentEventSubject returns the subject an agent event is republished on.
// Characters of eventType that cannot stand in a subject token become '_'.
func AgentEventSubject(agentID int, eventType string) string {
	return SubjectAgentEvents + "." + strconv.Itoa(agentID) + "." + subjectToken(eventType)
}

// ConfirmationSubject returns the subject of a confirmation with status s.
func ConfirmationSubject(s ConfirmationStatus) string { return SubjectConfirmations + "." + string(s) }

// ConfirmationMsgID returns the Nats-Msg-Id of the confirmation of a
// command. Confirmed and unconfirmed share it: whichever is stored first
// is the only one.
func ConfirmationMsgID(commandID string) string { return "confirmation-" + commandID }

// SessionEventSubject returns the subject of a session event.
func SessionEventSubject(agentID int, kind SessionEventKind) string {
	return SubjectSessionEvents + "." + strconv.Itoa(agentID) + "." + string(kind)
}

// PendingKey is the [BucketPending] key of a command awaiting confirmation.
func PendingKey(agentID int, commandID string) string {
	return strconv.Itoa(agentID) + "." + commandID
}

func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
