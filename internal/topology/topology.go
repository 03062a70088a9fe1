// Package topology declares callcontrol's JetStream state once: the
// streams, key-value buckets and durable consumers, their subjects and
// their limits, and creates or updates them with [Provision].
//
// The state is split in [Part]s. [Shared] is what every role uses (the
// command, result, dead-letter and event streams; the ledger, session,
// pending and call-state buckets). [Workers] is the workers' lease bucket
// and their two consumers; [Pollers] is the pollers' membership and lease
// bucket; [API] is the HTTP API's idempotency bucket. A role provisions
// [Shared] and its own part only, with [Ensure] at start: its NATS user
// may have rights to nothing else (deployments/nats/accounts.conf), and it
// must not reset another role's settings (an AckWait, a lease TTL) to
// defaults. Provisioning is idempotent, so whichever role starts first
// creates the shared part and the others find it in place.
//
// The package does no logging; errors name the stream, bucket or consumer
// and wrap JetStream's error.
package topology

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The defaults of [Config], applied to its zero fields.
const (
	// DefaultReplicas of every stream, bucket and consumer: a single server.
	DefaultReplicas = 1
	// DefaultCommandMaxAge is how long commands are kept after they are
	// acknowledged, for audit and analytics.
	DefaultCommandMaxAge = 24 * time.Hour
	// DefaultResultMaxAge is how long results and dead letters are kept.
	DefaultResultMaxAge = 7 * 24 * time.Hour
	// DefaultDuplicateWindow is JetStream's de-duplication window on
	// Nats-Msg-Id for commands and results.
	DefaultDuplicateWindow = 10 * time.Minute
	// DefaultLedgerTTL is how long a command_id is remembered as executed.
	DefaultLedgerTTL = 24 * time.Hour
	// DefaultEventMaxAge is how long agent events, confirmations and
	// session events are kept.
	DefaultEventMaxAge = 7 * 24 * time.Hour
	// DefaultPendingTTL is how long an accepted disconnect awaits its
	// release event in the pending bucket.
	DefaultPendingTTL = time.Hour
	// DefaultCallsTTL is how long an agent's live call state is kept
	// without a write: an agent not polled and without events for a day
	// is forgotten.
	DefaultCallsTTL = 24 * time.Hour

	// DefaultAckWait is the workers' consumers' AckWait.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is how many times the workers' consumer delivers
	// one command.
	DefaultMaxDeliver = 5
	// DefaultWorkerLeaseTTL is the TTL of the workers' per-agent leases.
	DefaultWorkerLeaseTTL = 15 * time.Second
	// DefaultMaxAckPending is the commands the workers' consumer has
	// delivered and not yet acknowledged, at most.
	DefaultMaxAckPending = 20000
	// DefaultMaxWaiting is the pull requests the workers' consumer keeps
	// waiting, at most.
	DefaultMaxWaiting = 4096

	// DefaultPollLeaseTTL is the TTL of poller membership and per-agent
	// poll leases.
	DefaultPollLeaseTTL = 30 * time.Second

	// DefaultIdempotencyTTL is how long the HTTP API remembers an
	// Idempotency-Key and its first response.
	DefaultIdempotencyTTL = 24 * time.Hour
)

// BucketIdempotency is the HTTP API's bucket of Idempotency-Keys: a hash
// of the token's name and the key -> the hash of the key and body and the
// first response.
const BucketIdempotency = "callcontrol_idempotency"

// Part is a set of the parts of the topology, combined with |.
type Part uint8

const (
	// Shared is what every role uses: the streams of commands, results,
	// dead letters and events, and the ledger, sessions, pending and calls
	// buckets.
	Shared Part = 1 << iota
	// Workers is the workers' lease bucket and their consumers of commands
	// and of exhausted commands.
	Workers
	// Pollers is the pollers' membership and lease bucket.
	Pollers
	// API is the HTTP API's idempotency bucket ([BucketIdempotency]).
	API

	// All is every part: what a process running every role (callcontrol
	// dev, the bench, tests) provisions.
	All = Shared | Workers | Pollers | API
)

// Config sizes the topology. The zero value of each field takes the
// Default* constant named in its comment.
type Config struct {
	// Replicas of every stream, bucket and consumer: 1 on a single server,
	// 3 on a production cluster. Default [DefaultReplicas].
	Replicas int
	// Storage of streams and buckets. Default file storage: commands must
	// survive a server restart.
	Storage jetstream.StorageType
	// CommandMaxAge: default [DefaultCommandMaxAge].
	CommandMaxAge time.Duration
	// ResultMaxAge, of results and dead letters: default [DefaultResultMaxAge].
	ResultMaxAge time.Duration
	// DuplicateWindow of the streams: default [DefaultDuplicateWindow].
	DuplicateWindow time.Duration
	// LedgerTTL: a command re-published later than this after it ran runs
	// again. Default [DefaultLedgerTTL].
	LedgerTTL time.Duration
	// EventMaxAge: default [DefaultEventMaxAge].
	EventMaxAge time.Duration

	// Workers sizes the [Workers] part.
	Workers WorkersConfig
	// Pollers sizes the [Pollers] part.
	Pollers PollersConfig
	// API sizes the [API] part.
	API APIConfig
}

// APIConfig sizes the [API] part.
type APIConfig struct {
	// IdempotencyTTL of [BucketIdempotency]: how long a key is
	// remembered. Default [DefaultIdempotencyTTL].
	IdempotencyTTL time.Duration
}

// WorkersConfig sizes the [Workers] part. worker.Config.Topology returns
// the one a worker configuration runs with.
type WorkersConfig struct {
	// AckWait of both consumers: default [DefaultAckWait].
	AckWait time.Duration
	// MaxDeliver of the command consumer: default [DefaultMaxDeliver].
	MaxDeliver int
	// LeaseTTL of the workers' lease bucket: default [DefaultWorkerLeaseTTL].
	LeaseTTL time.Duration
}

// PollersConfig sizes the [Pollers] part. poller.Config.Topology returns
// the one a poller configuration runs with.
type PollersConfig struct {
	// LeaseTTL of the pollers' membership and lease bucket: how long a dead
	// poller's agents wait to be taken over. It must exceed the gateway
	// client's PollTimeout. Default [DefaultPollLeaseTTL].
	LeaseTTL time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	def(&c.CommandMaxAge, DefaultCommandMaxAge)
	def(&c.ResultMaxAge, DefaultResultMaxAge)
	def(&c.DuplicateWindow, DefaultDuplicateWindow)
	def(&c.LedgerTTL, DefaultLedgerTTL)
	def(&c.EventMaxAge, DefaultEventMaxAge)
	def(&c.Workers.AckWait, DefaultAckWait)
	if c.Workers.MaxDeliver == 0 {
		c.Workers.MaxDeliver = DefaultMaxDeliver
	}
	def(&c.Workers.LeaseTTL, DefaultWorkerLeaseTTL)
	def(&c.Pollers.LeaseTTL, DefaultPollLeaseTTL)
	def(&c.API.IdempotencyTTL, DefaultIdempotencyTTL)
	return c
}
