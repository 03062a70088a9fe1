// Package worker executes disconnect commands from JetStream against the
// CC-Gateway: consume, decide, dispose.
//
// Each replica runs Concurrency slots; a slot pulls one message, decodes and
// validates it, checks the idempotency ledger and the command's deadline,
// takes the agent's lease, sends the gateway request with backoff and
// disposes of the message in one place ([Worker.dispose]): every valid
// command ends in exactly one result event, and no command is executed twice
// or after its deadline.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// disconnecter is the part of the gateway client the worker uses.
type disconnecter interface {
	Disconnect(ctx context.Context, agentID int, number, guid string) error
}

// errShutdown is the cause of the context that cancels in-flight commands
// when the shutdown timeout runs out; such commands are Nak'ed, not failed.
var errShutdown = errors.New("worker: shutting down")

// Worker executes disconnect commands. Create it with [New] and call [Worker.Run].
type Worker struct {
	cfg      Config
	js       jetstream.JetStream
	gw       disconnecter
	log      zerolog.Logger
	fetchLog zerolog.Logger // sampled: every slot fails at once while NATS is away
	ledger   ledger
	pending  jetstream.KeyValue
	leases   *leases
	sessions *sessions
}

// New checks cfg and returns a Worker that reads commands through js and
// sends them with gw. The streams, buckets and consumer must exist (see
// [Provision]).
func New(cfg Config, js jetstream.JetStream, gw disconnecter) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With().Str("component", "worker").Logger()
	return &Worker{cfg: cfg, js: js, gw: gw, log: log,
		fetchLog: log.Sample(&zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second})}, nil
}

// Run consumes commands until ctx ends, then stops pulling, lets in-flight
// commands finish (bounded by ShutdownTimeout, after which they are
// cancelled and Nak'ed for redelivery) and returns nil. It returns an error
// only when it cannot start.
func (w *Worker) Run(ctx context.Context) error {
	b, err := w.bind(ctx)
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go w.sessions.run(watchCtx)
	select {
	case <-w.sessions.ready:
	case <-ctx.Done():
		return nil
	}

	// In-flight commands run on work, not on ctx: shutdown first stops the
	// pulls (ctx), then waits for the slots, and only cancels work when the
	// shutdown timeout runs out.
	work, cancelWork := context.WithCancelCause(context.Background())
	defer cancelWork(nil)
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.slot(ctx, work, b.workers)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.exhausted(ctx, b.exhausted, b.commands)
	}()
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Str("instance", w.cfg.Instance).Msg("worker started")
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		cancelWork(errShutdown)
		<-done
	}
	w.log.Info().Msg("worker stopped")
	return nil
}

// bound holds the JetStream handles Run works with.
type bound struct {
	commands  jetstream.Stream
	workers   jetstream.Consumer
	exhausted jetstream.Consumer
}

func (w *Worker) bind(ctx context.Context) (bound, error) {
	var (
		b   bound
		err error
	)
	if b.commands, err = w.js.Stream(ctx, events.StreamCommands); err != nil {
		return b, fmt.Errorf("worker: stream %s: %w", events.StreamCommands, err)
	}
	if b.workers, err = b.commands.Consumer(ctx, events.ConsumerWorkers); err != nil {
		return b, fmt.Errorf("worker: consumer %s: %w", events.ConsumerWorkers, err)
	}
	if b.exhausted, err = w.js.Consumer(ctx, events.StreamDeadLetter, events.ConsumerExhausted); err != nil {
		return b, fmt.Errorf("worker: consumer %s: %w", events.ConsumerExhausted, err)
	}
	kvs := make([]jetstream.KeyValue, 4)
	for i, name := range []string{events.BucketLedger, events.BucketLeases, events.BucketSessions, events.BucketPending} {
		if kvs[i], err = w.js.KeyValue(ctx, name); err != nil {
			return b, fmt.Errorf("worker: bucket %s: %w", name, err)
		}
	}
	w.ledger = ledger{kv: kvs[0]}
	w.leases = newLeases(kvs[1], w.cfg.Instance, w.cfg.LeaseTTL)
	w.sessions = newSessions(kvs[2])
	w.pending = kvs[3]
	return b, nil
}

// slot pulls one message at a time until ctx ends. Pulling exactly one
// message per free slot means nothing waits in a client buffer while its
// AckWait runs.
func (w *Worker) slot(ctx, work context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(w.cfg.FetchWait))
		if err != nil {
			w.fetchLog.Warn().Err(err).Msg("fetch failed")
			_ = sleep(ctx, w.cfg.FetchWait)
			continue
		}
		for msg := range batch.Messages() {
			w.process(work, msg)
		}
	}
}
