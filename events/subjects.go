package events

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
)

// Streams and key-value buckets, created or updated idempotently at start.
const (
	// StreamCommands holds [SubjectDisconnect].
	StreamCommands = "CALLCONTROL_COMMANDS"
	// StreamResults holds [SubjectResults].>.
	StreamResults = "CALLCONTROL_RESULTS"
	// StreamDeadLetter holds [SubjectDeadLetter] and [SubjectMaxDeliveries].
	StreamDeadLetter = "CALLCONTROL_DLQ"
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
)

// Header names. Nats-Msg-Id is JetStream's de-duplication header: commands
// carry their command_id in it, results carry [ResultMsgID].
const (
	HeaderMsgID         = "Nats-Msg-Id"
	HeaderCommandID     = "Callcontrol-Command-Id"
	HeaderCorrelationID = "Callcontrol-Correlation-Id"
	HeaderStatus        = "Callcontrol-Status"
	HeaderReason        = "Callcontrol-Reason"
)

// ResultSubject returns the subject a result with status s is published on.
func ResultSubject(s Status) string { return SubjectResults + "." + string(s) }

// ResultMsgID returns the Nats-Msg-Id of the result of command id, so that a
// result re-published after a crash or redelivery is de-duplicated.
func ResultMsgID(commandID string) string { return "result-" + commandID }
