package topology

import (
	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// consumer is a durable consumer of a stream.
type consumer struct {
	stream string
	cfg    jetstream.ConsumerConfig
}

// declaration is what one part holds.
type declaration struct {
	streams   []jetstream.StreamConfig
	buckets   []jetstream.KeyValueConfig
	consumers []consumer
}

// declare returns what part p holds under c, which has its defaults.
func (c Config) declare(p Part) declaration {
	var d declaration
	if p&Shared != 0 {
		d.streams = append(d.streams, c.sharedStreams()...)
		d.buckets = append(d.buckets, c.sharedBuckets()...)
	}
	if p&Workers != 0 {
		d.buckets = append(d.buckets, jetstream.KeyValueConfig{
			Bucket: events.BucketLeases, TTL: c.Workers.LeaseTTL, Description: "agent.<id> -> worker holding the agent"})
		d.consumers = append(d.consumers, c.workerConsumers()...)
	}
	if p&Pollers != 0 {
		d.buckets = append(d.buckets, jetstream.KeyValueConfig{
			Bucket: events.BucketPollers, TTL: c.Pollers.LeaseTTL, Description: "member.<instance>, agent.<id> -> poller holding the agent"})
	}
	if p&API != 0 {
		d.buckets = append(d.buckets, jetstream.KeyValueConfig{
			Bucket: BucketIdempotency, TTL: c.API.IdempotencyTTL, Description: "hash of token name and Idempotency-Key -> request hash and first response"})
	}
	for i := range d.streams {
		sc := &d.streams[i]
		sc.Replicas, sc.Storage, sc.Duplicates = c.Replicas, c.Storage, c.DuplicateWindow
		sc.Retention, sc.Discard = jetstream.LimitsPolicy, jetstream.DiscardOld
	}
	for i := range d.buckets {
		kc := &d.buckets[i]
		kc.Replicas, kc.Storage, kc.History = c.Replicas, c.Storage, 1
	}
	return d
}

// sharedStreams are the commands, results, dead letters and events.
func (c Config) sharedStreams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{Name: events.StreamCommands, Subjects: []string{events.SubjectDisconnect}, MaxAge: c.CommandMaxAge},
		{Name: events.StreamResults, Subjects: []string{events.SubjectResults + ".>"}, MaxAge: c.ResultMaxAge},
		{Name: events.StreamDeadLetter, Subjects: []string{events.SubjectDeadLetter, events.SubjectMaxDeliveries}, MaxAge: c.ResultMaxAge},
		{Name: events.StreamEvents, MaxAge: c.EventMaxAge, Subjects: []string{
			events.SubjectAgentEvents + ".>", events.SubjectConfirmations + ".>", events.SubjectSessionEvents + ".>"}},
	}
}

// sharedBuckets are the ledger, sessions, pending and calls buckets.
func (c Config) sharedBuckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: events.BucketLedger, TTL: c.LedgerTTL, Description: "command_id -> execution record"},
		{Bucket: events.BucketSessions, Description: "agent_id -> current gateway session"},
		{Bucket: events.BucketPending, TTL: DefaultPendingTTL, Description: "<agent>.<command_id> -> accepted disconnect awaiting its release event"},
		// Written by the agent's poller on every call change and every few
		// seconds during a call.
		{Bucket: events.BucketCalls, TTL: DefaultCallsTTL, Description: "agent_id -> live call state, written by the agent's poller"},
	}
}

// workerConsumers are the workers' consumers of commands and of commands
// that ran out of deliveries.
func (c Config) workerConsumers() []consumer {
	return []consumer{{events.StreamCommands, jetstream.ConsumerConfig{
		Durable:       events.ConsumerWorkers,
		Description:   "shared by all worker replicas",
		FilterSubject: events.SubjectDisconnect,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.Workers.AckWait,
		MaxDeliver:    c.Workers.MaxDeliver,
		MaxAckPending: DefaultMaxAckPending,
		MaxWaiting:    DefaultMaxWaiting,
		Replicas:      c.Replicas,
	}}, {events.StreamDeadLetter, jetstream.ConsumerConfig{
		Durable:       events.ConsumerExhausted,
		Description:   "commands that ran out of deliveries, turned into failed results",
		FilterSubject: events.SubjectMaxDeliveries,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.Workers.AckWait,
		Replicas:      c.Replicas,
	}}}
}
