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
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// disconnecter is the part of the gateway client the worker uses: the
// release, and the call-info query that checks a command's call when the
// live call state is not fresh.
type disconnecter interface {
	Disconnect(ctx context.Context, agentID int, number, guid string) error
	CallInfo(ctx context.Context, agentID int, guid string) (gateway.CallInfo, error)
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
	ledger   ledger.Ledger
	pending  jetstream.KeyValue
	leases   *leases
	sessions *sessions
	calls    *calls
	releases sync.WaitGroup // lease deletions still under way
	tracer   trace.Tracer
}

// New checks cfg and returns a Worker that reads commands through js and
// sends them with gw. The streams, buckets and consumer must exist (see
// topology.Provision of topology.Shared|topology.Workers with [Config.Topology]).
func New(cfg Config, js jetstream.JetStream, gw disconnecter) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With().Str("component", "worker").Logger()
	return &Worker{cfg: cfg, js: js, gw: gw, log: log, tracer: tracing.Tracer(cfg.TracerProvider),
		fetchLog: log.Sample(&zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second})}, nil
}

// Run consumes commands until ctx ends, then stops pulling, lets in-flight
// commands finish (bounded by ShutdownTimeout, after which those not
// waiting on a gateway request are cancelled and Nak'ed for redelivery; a
// request already sent runs to its answer, which is recorded) and returns nil. It returns an error
// only when it cannot start.
func (w *Worker) Run(ctx context.Context) error {
	b, err := w.bind(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go w.sessions.run(watchCtx)
	go w.calls.run(watchCtx)
	for _, ready := range []chan struct{}{w.sessions.ready, w.calls.ready} {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil
		}
	}

	// In-flight commands run on work, not on ctx: shutdown first stops the
	// pulls (ctx), then waits for the slots, and only cancels work when the
	// shutdown timeout runs out.
	work, cancelWork := context.WithCancelCause(context.Background())
	defer cancelWork(nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.consume(ctx, work, b.workers)
	}()
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
	w.releases.Wait()
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
	kvs := make([]jetstream.KeyValue, 5)
	for i, name := range []string{events.BucketLedger, events.BucketLeases, events.BucketSessions, events.BucketPending, events.BucketCalls} {
		if kvs[i], err = w.js.KeyValue(ctx, name); err != nil {
			return b, fmt.Errorf("worker: bucket %s: %w", name, err)
		}
	}
	w.ledger = ledger.New(kvs[0])
	w.leases = newLeases(kvs[1], w.cfg.Instance, w.cfg.LeaseTTL)
	w.sessions = newSessions(kvs[2])
	w.pending = kvs[3]
	w.calls = newCalls(kvs[4])
	return b, nil
}

// consume runs Concurrency slots over one pull subscription until ctx
// ends, and returns when their commands are disposed of. A slot takes a
// message only when it is free; the subscription keeps at most prefetch
// messages ready, so that a slot that frees finds its next command without
// a round trip, and a message waits in this buffer only until a slot
// frees, not for a whole command. (A Fetch(1) per slot costs a
// subscription and a pull request per message: about 1 ms more per command
// with a 50 ms gateway, see make bench.) When the subscription ends for
// another reason (consumer deleted, connection closed), consume subscribes
// again after FetchWait.
func (w *Worker) consume(ctx, work context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		it, err := cons.Messages(jetstream.PullMaxMessages(w.prefetch()))
		if err != nil {
			w.fetchLog.Warn().Err(err).Msg("subscribe failed")
			_ = sleep(ctx, w.cfg.FetchWait)
			continue
		}
		var wg sync.WaitGroup
		for range w.cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.slot(ctx, work, it)
			}()
		}
		wg.Wait()
		w.unsubscribe(it)
		if ctx.Err() == nil {
			_ = sleep(ctx, w.cfg.FetchWait)
		}
	}
}

// prefetch is how many messages the subscription keeps ready for the
// slots: enough to refill them while a pull request is under way, few
// enough that none waits long while its AckWait runs.
func (w *Worker) prefetch() int { return max(1, min(w.cfg.Concurrency/2, 32)) }

// slot processes one message at a time until ctx ends or the subscription
// fails. Next is safe for concurrent use: the slots take turns.
func (w *Worker) slot(ctx, work context.Context, it jetstream.MessagesContext) {
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case ctx.Err() != nil: // stopping: unsubscribe Naks what is left
			if msg != nil {
				_ = msg.NakWithDelay(handBack)
			}
			return
		case err != nil:
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				w.fetchLog.Warn().Err(err).Msg("pull subscription failed")
			}
			it.Stop() // the other slots get ErrMsgIteratorClosed
			return
		}
		w.process(work, msg)
	}
}

// unsubscribe ends the subscription and Naks the messages still in its
// buffer, so that another replica takes them soon, not after AckWait. The
// Nak is delayed by handBack: the server would otherwise hand a message
// straight back to this subscription's pull request, still open while it
// drains, and each round trip is a delivery; under load a command used up
// its MaxDeliver so within a second and failed max_deliveries without
// ever being tried (TestShutdownNeverCancelsARequestSent).
func (w *Worker) unsubscribe(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		_ = msg.NakWithDelay(handBack)
	}
}

// handBack is how long a message a stopping worker gives back waits
// before the server delivers it again: past the drain of the stopping
// worker's subscription, so the next delivery goes to another replica.
const handBack = time.Second
