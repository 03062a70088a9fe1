package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology sizes the streams and buckets [Provision] creates.
type Topology struct {
	// Replicas of every stream and bucket: 1 on a single server, 3 on a
	// production cluster. Default 1.
	Replicas int
	// Storage of streams and buckets. Default file storage: commands must
	// survive a server restart.
	Storage jetstream.StorageType
	// CommandMaxAge is how long commands are kept for audit and analytics
	// after they are acknowledged. Default 24h.
	CommandMaxAge time.Duration
	// ResultMaxAge is how long results and dead letters are kept. Default 7 days.
	ResultMaxAge time.Duration
	// DuplicateWindow is JetStream's de-duplication window on Nats-Msg-Id for
	// commands and results. Default 10m.
	DuplicateWindow time.Duration
	// LedgerTTL is how long a command_id is remembered as executed: a
	// command re-published later than this runs again. Default 24h.
	LedgerTTL time.Duration
	// EventMaxAge is how long agent events, confirmations and session
	// events are kept. Default 7 days.
	EventMaxAge time.Duration
	// PollLeaseTTL is the TTL of poller membership and per-agent poll
	// leases: how long a dead poller's agents wait to be taken over. It
	// must exceed the gateway client's PollTimeout. Default 30s.
	PollLeaseTTL time.Duration
}

func (t Topology) withDefaults() Topology {
	if t.Replicas == 0 {
		t.Replicas = 1
	}
	if t.CommandMaxAge == 0 {
		t.CommandMaxAge = 24 * time.Hour
	}
	if t.ResultMaxAge == 0 {
		t.ResultMaxAge = 7 * 24 * time.Hour
	}
	if t.DuplicateWindow == 0 {
		t.DuplicateWindow = 10 * time.Minute
	}
	if t.LedgerTTL == 0 {
		t.LedgerTTL = 24 * time.Hour
	}
	if t.EventMaxAge == 0 {
		t.EventMaxAge = 7 * 24 * time.Hour
	}
	if t.PollLeaseTTL == 0 {
		t.PollLeaseTTL = 30 * time.Second
	}
	return t
}

// Provision creates or updates everything: [ProvisionShared],
// [ProvisionWorker] and [ProvisionPoller]. It is idempotent. A process that
// runs one role should call the shared part and its own only, so that it
// does not reset another role's settings (AckWait, lease TTLs) to defaults.
func Provision(ctx context.Context, js jetstream.JetStream, topo Topology, cfg Config) error {
	if err := ProvisionShared(ctx, js, topo); err != nil {
		return err
	}
	if err := ProvisionWorker(ctx, js, topo, cfg); err != nil {
		return err
	}
	return ProvisionPoller(ctx, js, topo)
}

// ProvisionShared creates or updates the streams and the buckets every role
// uses: commands, results, dead letters, events; ledger, sessions, pending,
// calls.
func ProvisionShared(ctx context.Context, js jetstream.JetStream, topo Topology) error {
	topo = topo.withDefaults()
	streams := []jetstream.StreamConfig{
		{Name: events.StreamCommands, Subjects: []string{events.SubjectDisconnect}, MaxAge: topo.CommandMaxAge},
		{Name: events.StreamResults, Subjects: []string{events.SubjectResults + ".>"}, MaxAge: topo.ResultMaxAge},
		{Name: events.StreamDeadLetter, Subjects: []string{events.SubjectDeadLetter, events.SubjectMaxDeliveries}, MaxAge: topo.ResultMaxAge},
		{Name: events.StreamEvents, MaxAge: topo.EventMaxAge, Subjects: []string{
			events.SubjectAgentEvents + ".>", events.SubjectConfirmations + ".>", events.SubjectSessionEvents + ".>"}},
	}
	for _, sc := range streams {
		sc.Replicas, sc.Storage, sc.Duplicates = topo.Replicas, topo.Storage, topo.DuplicateWindow
		sc.Retention, sc.Discard = jetstream.LimitsPolicy, jetstream.DiscardOld
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("provision: stream %s: %w", sc.Name, err)
		}
	}
	return provisionBuckets(ctx, js, topo,
		jetstream.KeyValueConfig{Bucket: events.BucketLedger, TTL: topo.LedgerTTL, Description: "command_id -> execution record"},
		jetstream.KeyValueConfig{Bucket: events.BucketSessions, Description: "agent_id -> current gateway session"},
		jetstream.KeyValueConfig{Bucket: events.BucketPending, TTL: time.Hour, Description: "<agent>.<command_id> -> accepted disconnect awaiting its release event"},
		// Written by the agent's poller on every call change and every few
		// seconds during a call; an agent not polled and without events for
		// a day is forgotten.
		jetstream.KeyValueConfig{Bucket: events.BucketCalls, TTL: 24 * time.Hour, Description: "agent_id -> live call state, written by the agent's poller"},
	)
}

// ProvisionWorker creates or updates the workers' lease bucket (TTL
// cfg.LeaseTTL) and consumers (AckWait, MaxDeliver from cfg).
func ProvisionWorker(ctx context.Context, js jetstream.JetStream, topo Topology, cfg Config) error {
	topo, cfg = topo.withDefaults(), cfg.withDefaults()
	err := provisionBuckets(ctx, js, topo, jetstream.KeyValueConfig{
		Bucket: events.BucketLeases, TTL: cfg.LeaseTTL, Description: "agent.<id> -> worker holding the agent"})
	if err != nil {
		return err
	}
	consumers := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{{events.StreamCommands, jetstream.ConsumerConfig{
		Durable:       events.ConsumerWorkers,
		Description:   "shared by all worker replicas",
		FilterSubject: events.SubjectDisconnect,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: 20000,
		MaxWaiting:    4096,
		Replicas:      topo.Replicas,
	}}, {events.StreamDeadLetter, jetstream.ConsumerConfig{
		Durable:       events.ConsumerExhausted,
		Description:   "commands that ran out of deliveries, turned into failed results",
		FilterSubject: events.SubjectMaxDeliveries,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		Replicas:      topo.Replicas,
	}}}
	for _, c := range consumers {
		if _, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg); err != nil {
			return fmt.Errorf("provision: consumer %s: %w", c.cfg.Durable, err)
		}
	}
	return nil
}

// ProvisionPoller creates or updates the pollers' membership and lease
// bucket (TTL topo.PollLeaseTTL).
func ProvisionPoller(ctx context.Context, js jetstream.JetStream, topo Topology) error {
	topo = topo.withDefaults()
	return provisionBuckets(ctx, js, topo, jetstream.KeyValueConfig{
		Bucket: events.BucketPollers, TTL: topo.PollLeaseTTL, Description: "member.<instance>, agent.<id> -> poller holding the agent"})
}

func provisionBuckets(ctx context.Context, js jetstream.JetStream, topo Topology, buckets ...jetstream.KeyValueConfig) error {
	for _, kc := range buckets {
		kc.Replicas, kc.Storage, kc.History = topo.Replicas, topo.Storage, 1
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}
