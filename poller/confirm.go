package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/kvwatch"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

const (
	// confirmSweepEvery is how often deadlines are checked and failed
	// publishes retried.
	confirmSweepEvery = time.Second
	// confirmCallsPerAgent bounds the calls whose parties are remembered
	// per agent; the oldest is forgotten first.
	confirmCallsPerAgent = 32
	// confirmCallMemory is how long a call's parties are kept after its
	// Call_Release.
	confirmCallMemory = 10 * time.Minute
	// confirmReleasesPerAgent bounds the unmatched releases kept per agent
	// during the grace.
	confirmReleasesPerAgent = 64
	// confirmParallel bounds the publishes and deletes in flight.
	confirmParallel = 8
	// confirmAttemptFor bounds one round of publish (or delete) retries; a
	// round that fails is tried again at the next sweep.
	confirmAttemptFor = 10 * time.Second
	// confirmDrainFor bounds how long run waits at shutdown for decided
	// confirmations to be published.
	confirmDrainFor = 2 * time.Second
	// confirmDefaultGrace applies when Config.ReleaseGrace is 0.
	confirmDefaultGrace = 30 * time.Second
)

// confirmer correlates accepted disconnects ([events.Pending] records in
// [events.BucketPending], written by the worker) with the release events of
// the agents this replica polls, and publishes one [events.Confirmation]
// per command: confirmed when a release names the number (or, failing
// that, a Call_Release ends a call the number was a party of), unconfirmed
// when the pending deadline passes first.
//
// Matching happens in memory under one mutex, in observe and in the
// bucket watch; publishing happens in run, so observe never waits on NATS.
type confirmer struct {
	grace time.Duration
	js    jetstream.JetStream
	log   zerolog.Logger
	owns  func(agent int) bool
	kick  chan struct{} // capacity 1: "the outbox has work"
	kv    jetstream.KeyValue
	m     *metrics.Metrics // nil: no metrics
	tr    trace.Tracer

	mu      sync.Mutex
	pending map[string]*pendingCmd // by PendingKey, every agent
	agents  map[int]*agentTrack
	outbox  []*pendingCmd // decided, to publish and delete
}

// pendingCmd is one watched pending record and, once decided, its outcome.
type pendingCmd struct {
	key       string
	rev       uint64
	p         events.Pending
	out       *events.Confirmation // nil while waiting for a release
	published bool                 // out is stored in the stream
	queued    bool                 // in the outbox or being settled
}

// newConfirmer returns a confirmer; owns reports whether this replica polls
// an agent now (it is called without the confirmer's lock held).
func newConfirmer(cfg Config, js jetstream.JetStream, log zerolog.Logger, owns func(agent int) bool) *confirmer {
	grace := cfg.ReleaseGrace
	if grace <= 0 {
		grace = confirmDefaultGrace
	}
	return &confirmer{
		grace: grace, js: js, log: log, owns: owns, kick: make(chan struct{}, 1), m: cfg.Metrics,
		tr:      tracing.Tracer(cfg.TracerProvider),
		pending: make(map[string]*pendingCmd), agents: make(map[int]*agentTrack),
	}
}

// run binds [events.BucketPending], keeps the in-memory view in step with
// it, sweeps deadlines every second and publishes decided confirmations.
// It returns nil when ctx ends, after giving decided confirmations up to
// 2s to be published; it fails only if the bucket cannot be bound.
func (c *confirmer) run(ctx context.Context) error {
	kv, err := c.js.KeyValue(ctx, events.BucketPending)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("confirm: bind %s: %w", events.BucketPending, err)
	}
	c.kv = kv
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		kvwatch.Follow(ctx, kv, "", kvwatch.View{Apply: c.apply, Failed: func(err error) {
			c.log.Warn().Err(err).Msg("pending watch failed")
		}})
	}()

	// Settling outlives ctx by at most confirmDrainFor, so that a decided
	// confirmation is not lost to a shutdown.
	jobCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	var g errgroup.Group
	g.SetLimit(confirmParallel)
	tick := time.NewTicker(confirmSweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-watched
			stop := time.AfterFunc(confirmDrainFor, stopJobs)
			c.dispatch(jobCtx, &g)
			_ = g.Wait()
			stop.Stop()
			return nil
		case <-c.kick:
		case <-tick.C:
			c.sweep(time.Now())
		}
		c.dispatch(jobCtx, &g)
	}
}

// dispatch settles the queued commands, at most confirmParallel at once.
func (c *confirmer) dispatch(ctx context.Context, g *errgroup.Group) {
	c.mu.Lock()
	jobs := c.outbox
	c.outbox = nil
	c.mu.Unlock()
	for _, pc := range jobs {
		g.Go(func() error { c.settle(ctx, pc); return nil })
	}
}

// settle publishes pc's confirmation (once) and then deletes its pending
// record at the revision it was decided on. A round that fails, or a
// record rewritten meanwhile, is queued again for the next sweep.
func (c *confirmer) settle(ctx context.Context, pc *pendingCmd) {
	c.mu.Lock()
	out, published := pc.out, pc.published
	c.mu.Unlock()
	if !published {
		dup, err := c.publish(ctx, out, pc.p.Traceparent)
		if err != nil {
			c.requeue(pc, false)
			return
		}
		c.mu.Lock()
		pc.published = true
		c.mu.Unlock()
		if !dup { // a duplicate was logged and counted by whoever stored it first
			c.logOutcome(out)
			c.m.Confirmed(out.Status == events.ConfirmationConfirmed, out.IssuedAt, out.ReleasedAt)
		}
	}
	c.mu.Lock()
	rev, watched := pc.rev, c.pending[pc.key] == pc
	c.mu.Unlock()
	if !watched { // deleted meanwhile
		c.requeue(pc, true)
		return
	}
	err := c.retry(ctx, func() error {
		err := c.kv.Delete(ctx, pc.key, jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return backoff.Permanent(err)
		}
		return err
	})
	c.requeue(pc, err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !c.rewritten(pc, rev))
}

// rewritten reports whether pc is still watched at a revision other than
// rev: the record was written again and must still be deleted.
func (c *confirmer) rewritten(pc *pendingCmd, rev uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[pc.key] == pc && pc.rev != rev
}

// requeue ends a settle round: done, or queued again for the next sweep.
func (c *confirmer) requeue(pc *pendingCmd, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc.queued = false
	if !done {
		c.enqueue(pc)
	}
}

// publish stores out with its Msg-Id, reporting whether the stream already
// held a confirmation of that command. It carries the trace context of the
// command (traceparent, from its pending record), if any.
func (c *confirmer) publish(ctx context.Context, out *events.Confirmation, traceparent string) (bool, error) {
	data, err := json.Marshal(out)
	if err != nil {
		return false, err
	}
	ctx, span := c.tr.Start(tracing.WithTraceparent(ctx, traceparent), "confirm", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("command_id", out.CommandID), attribute.Int("agent_id", out.AgentID),
			attribute.String("outcome", string(out.Status))))
	defer span.End()
	m := nats.NewMsg(events.ConfirmationSubject(out.Status))
	m.Data = data
	m.Header.Set(events.HeaderMsgID, events.ConfirmationMsgID(out.CommandID))
	m.Header.Set(events.HeaderCommandID, out.CommandID)
	m.Header.Set(events.HeaderStatus, string(out.Status))
	if out.CorrelationID != "" {
		m.Header.Set(events.HeaderCorrelationID, out.CorrelationID)
	}
	tracing.Inject(ctx, m.Header)
	var dup bool
	err = c.retry(ctx, func() error {
		ack, err := c.js.PublishMsg(ctx, m)
		if err == nil {
			dup = ack.Duplicate
		}
		return err
	})
	if err != nil {
		span.SetStatus(codes.Error, "publish failed")
	}
	return dup, err
}

// retry runs op with a short backoff, every field set, for at most
// confirmAttemptFor and while ctx lasts.
func (c *confirmer) retry(ctx context.Context, op func() error) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2,
		MaxInterval: time.Second, MaxElapsedTime: confirmAttemptFor, Stop: backoff.Stop, Clock: backoff.SystemClock,
	}
	b.Reset()
	return backoff.Retry(op, backoff.WithContext(b, ctx))
}

// logOutcome writes the one log line of a command's confirmation.
func (c *confirmer) logOutcome(out *events.Confirmation) {
	e := c.log.Info().Str("command_id", out.CommandID).Int("agent_id", out.AgentID).
		Str("number", events.MaskNumber(out.Number)).Str("outcome", string(out.Status))
	if out.Status == events.ConfirmationConfirmed {
		e = e.Str("event_type", out.EventType).Str("call_id", out.CallID).Int64("latency_ms", out.LatencyMillis)
	}
	e.Msg("disconnect confirmation published")
}

// apply folds one bucket change into the view: a new waiting command is
// matched against the kept releases at once.
func (c *confirmer) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.pending[key]
	if e.Operation() != jetstream.KeyValuePut {
		if old != nil {
			delete(c.pending, key)
			delete(c.track(old.p.AgentID).pending, key)
		}
		return
	}
	var p events.Pending
	if err := json.Unmarshal(e.Value(), &p); err != nil || p.CommandID == "" {
		c.log.Warn().Str("key", key).Msg("pending record unreadable, ignored")
		return
	}
	if p.AgentID == 0 {
		p.AgentID, _ = strconv.Atoi(strings.SplitN(key, ".", 2)[0])
	}
	if old != nil && old.out != nil { // decided: delete the newer revision too
		old.rev, old.p = e.Revision(), p
		c.enqueue(old)
		return
	}
	pc := &pendingCmd{key: key, rev: e.Revision(), p: p}
	if old != nil && old.p.AgentID != p.AgentID {
		delete(c.track(old.p.AgentID).pending, key)
	}
	c.pending[key] = pc
	t := c.track(p.AgentID)
	t.pending[key] = pc
	c.matchKept(t, pc, time.Now())
}
