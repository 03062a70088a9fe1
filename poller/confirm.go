package poller

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// partyEvents are the gateway event types that name the parties of a call
// (caller, called, otherPhone, partner).
var partyEvents = map[string]bool{
	"AgentEvent_Talking": true, "AgentEvent_Ringing": true,
	"AgentEvent_Customer_Alerting": true, "AgentEvent_Conference": true,
}

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

// agentTrack is what is known of one agent: its pending commands, the
// parties of its recent calls and its releases not matched yet.
type agentTrack struct {
	pending  map[string]*pendingCmd
	calls    map[string]*callParties
	order    []string // call IDs, oldest first
	releases []*releaseEvent
}

type callParties struct {
	parties  map[string]bool
	consumed map[string]bool // numbers whose release in this call confirmed a command
	ended    time.Time       // when its Call_Release was seen
}

type releaseEvent struct {
	typ, callID, number string
	at                  time.Time // ReleasedAt: gateway time, else received
	seen                time.Time // local time, for the grace
	used                bool      // a Customer_Release confirms one command
}

// newConfirmer returns a confirmer; owns reports whether this replica polls
// an agent now (it is called without the confirmer's lock held).
func newConfirmer(cfg Config, js jetstream.JetStream, log zerolog.Logger, owns func(agent int) bool) *confirmer {
	grace := cfg.ReleaseGrace
	if grace <= 0 {
		grace = confirmDefaultGrace
	}
	return &confirmer{
		grace: grace, js: js, log: log, owns: owns, kick: make(chan struct{}, 1),
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
	go func() { defer close(watched); c.watchLoop(ctx) }()

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

// observe takes one event of an owned agent, in order per agent. It only
// updates memory and queues decided confirmations; it never waits on NATS.
func (c *confirmer) observe(_ context.Context, ev events.AgentEvent) {
	if !partyEvents[ev.Type] && ev.Type != events.EventCustomerRelease && ev.Type != events.EventCallRelease {
		return
	}
	str, obj := parseReleaseContent(ev.Content)
	callID := cmp.Or(ev.CallID, obj["callid"], str)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.track(ev.AgentID)
	switch ev.Type {
	case events.EventCustomerRelease:
		rel := &releaseEvent{typ: ev.Type, callID: callID, number: normalizeParty(cmp.Or(ev.Number, obj["number"])),
			at: releaseTime(ev, now), seen: now}
		c.customerRelease(t, rel)
	case events.EventCallRelease:
		c.callRelease(t, &releaseEvent{typ: ev.Type, callID: callID, at: releaseTime(ev, now), seen: now})
	default:
		if callID == "" {
			return
		}
		call := t.call(callID)
		for _, k := range []string{"caller", "called", "otherphone", "number"} {
			call.add(obj[k])
		}
		for p := range strings.SplitSeq(obj["partner"], ",") {
			call.add(p)
		}
	}
}

// customerRelease confirms the oldest waiting command for the released
// number, or keeps the release for the grace. A release of a number whose
// release in that call already confirmed a command (through Call_Release)
// is the same release and is ignored.
func (c *confirmer) customerRelease(t *agentTrack, rel *releaseEvent) {
	if rel.number == "" {
		return
	}
	var call *callParties
	if rel.callID != "" {
		call = t.call(rel.callID)
		call.add(rel.number)
		if call.consumed[rel.number] {
			return
		}
	}
	if pc := t.oldestWaiting(rel.number); pc != nil {
		rel.used = true
		c.confirm(t, pc, rel)
		return
	}
	t.keep(rel)
}

// callRelease confirms, for each party of the call whose release has not
// confirmed a command yet, the oldest waiting command for that number: the
// fallback for numbers no Customer_Release names (an inner-help work
// number). Unused parties keep the release for the grace.
func (c *confirmer) callRelease(t *agentTrack, rel *releaseEvent) {
	call, ok := t.calls[rel.callID]
	if !ok || rel.callID == "" {
		return
	}
	call.ended = rel.seen
	open := false
	for _, n := range slices.Sorted(maps.Keys(call.parties)) {
		if call.consumed[n] {
			continue
		}
		if pc := t.oldestWaiting(n); pc != nil {
			c.confirm(t, pc, rel)
		} else {
			open = true
		}
	}
	if open {
		t.keep(rel)
	}
}

// matchKept matches a newly seen waiting command against the releases kept
// for the grace: Customer_Releases first (they name the number), then
// Call_Releases, oldest first.
func (c *confirmer) matchKept(t *agentTrack, pc *pendingCmd, now time.Time) {
	n := normalizeParty(pc.p.Number)
	for _, typ := range []string{events.EventCustomerRelease, events.EventCallRelease} {
		for _, rel := range t.releases {
			if rel.typ != typ || rel.used || now.Sub(rel.seen) > c.grace {
				continue
			}
			call := t.calls[rel.callID]
			if call != nil && call.consumed[n] {
				continue
			}
			switch {
			case typ == events.EventCustomerRelease && rel.number == n:
				rel.used = true
			case typ == events.EventCallRelease && call != nil && call.parties[n]:
			default:
				continue
			}
			c.confirm(t, pc, rel)
			return
		}
	}
}

// confirm decides pc as confirmed by rel. The caller holds c.mu.
func (c *confirmer) confirm(t *agentTrack, pc *pendingCmd, rel *releaseEvent) {
	if call := t.calls[rel.callID]; call != nil {
		call.consumed[normalizeParty(pc.p.Number)] = true
	}
	out := newConfirmation(pc.p, time.Now())
	out.Status, out.EventType, out.CallID, out.ReleasedAt = events.ConfirmationConfirmed, rel.typ, rel.callID, rel.at
	if !pc.p.IssuedAt.IsZero() && rel.at.After(pc.p.IssuedAt) {
		out.LatencyMillis = rel.at.Sub(pc.p.IssuedAt).Milliseconds()
	}
	c.decide(pc, out)
}

func newConfirmation(p events.Pending, now time.Time) *events.Confirmation {
	return &events.Confirmation{
		CommandID: p.CommandID, CorrelationID: p.CorrelationID, AgentID: p.AgentID, Number: p.Number,
		Status: events.ConfirmationUnconfirmed, IssuedAt: p.IssuedAt, AcceptedAt: p.AcceptedAt, ConfirmedAt: now,
	}
}

// decide records pc's outcome and queues it. The caller holds c.mu.
func (c *confirmer) decide(pc *pendingCmd, out *events.Confirmation) {
	pc.out = out
	c.enqueue(pc)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *confirmer) enqueue(pc *pendingCmd) {
	if !pc.queued {
		pc.queued = true
		c.outbox = append(c.outbox, pc)
	}
}

// sweep decides as unconfirmed every waiting command past its deadline of
// an agent this replica owns, and orphans (any agent) more than twice the
// grace past it; it also forgets expired releases and ended calls.
func (c *confirmer) sweep(now time.Time) {
	c.mu.Lock()
	var due []int
	for _, pc := range c.pending {
		if pc.out == nil && now.After(pc.p.Deadline) && !slices.Contains(due, pc.p.AgentID) {
			due = append(due, pc.p.AgentID)
		}
	}
	c.mu.Unlock()
	owned := make(map[int]bool, len(due))
	for _, a := range due {
		owned[a] = c.owns(a)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pc := range c.pending {
		if pc.out == nil && now.After(pc.p.Deadline) && (owned[pc.p.AgentID] || now.After(pc.p.Deadline.Add(2*c.grace))) {
			c.decide(pc, newConfirmation(pc.p, now))
		}
	}
	for a, t := range c.agents {
		t.prune(now, c.grace)
		if len(t.pending) == 0 && len(t.calls) == 0 && len(t.releases) == 0 {
			delete(c.agents, a)
		}
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
		dup, err := c.publish(ctx, out)
		if err != nil {
			c.requeue(pc, false)
			return
		}
		c.mu.Lock()
		pc.published = true
		c.mu.Unlock()
		if !dup { // a duplicate was logged by whoever stored it first
			c.logOutcome(out)
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
// held a confirmation of that command.
func (c *confirmer) publish(ctx context.Context, out *events.Confirmation) (bool, error) {
	data, err := json.Marshal(out)
	if err != nil {
		return false, err
	}
	m := nats.NewMsg(events.ConfirmationSubject(out.Status))
	m.Data = data
	m.Header.Set(events.HeaderMsgID, events.ConfirmationMsgID(out.CommandID))
	m.Header.Set(events.HeaderCommandID, out.CommandID)
	m.Header.Set(events.HeaderStatus, string(out.Status))
	if out.CorrelationID != "" {
		m.Header.Set(events.HeaderCorrelationID, out.CorrelationID)
	}
	var dup bool
	err = c.retry(ctx, func() error {
		ack, err := c.js.PublishMsg(ctx, m)
		if err == nil {
			dup = ack.Duplicate
		}
		return err
	})
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

// watchLoop keeps the pending view in step with the bucket until ctx ends,
// re-establishing the watch if it fails.
func (c *confirmer) watchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		c.watch(ctx)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (c *confirmer) watch(ctx context.Context) {
	w, err := c.kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("pending watch failed")
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				c.apply(e)
			}
		}
	}
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

// track returns agent's state, creating it. The caller holds c.mu.
func (c *confirmer) track(agent int) *agentTrack {
	t, ok := c.agents[agent]
	if !ok {
		t = &agentTrack{pending: make(map[string]*pendingCmd), calls: make(map[string]*callParties)}
		c.agents[agent] = t
	}
	return t
}

// oldestWaiting returns the earliest accepted undecided command for number.
func (t *agentTrack) oldestWaiting(number string) *pendingCmd {
	var best *pendingCmd
	for _, pc := range t.pending {
		if pc.out != nil || normalizeParty(pc.p.Number) != number {
			continue
		}
		if best == nil || pc.p.AcceptedAt.Before(best.p.AcceptedAt) ||
			pc.p.AcceptedAt.Equal(best.p.AcceptedAt) && pc.rev < best.rev {
			best = pc
		}
	}
	return best
}

// call returns the parties of callID, remembering at most
// confirmCallsPerAgent calls.
func (t *agentTrack) call(callID string) *callParties {
	if cp, ok := t.calls[callID]; ok {
		return cp
	}
	cp := &callParties{parties: make(map[string]bool), consumed: make(map[string]bool)}
	t.calls[callID] = cp
	t.order = append(t.order, callID)
	if len(t.order) > confirmCallsPerAgent {
		delete(t.calls, t.order[0])
		t.order = t.order[1:]
	}
	return cp
}

// keep holds an unmatched release for the grace.
func (t *agentTrack) keep(rel *releaseEvent) {
	t.releases = append(t.releases, rel)
	if len(t.releases) > confirmReleasesPerAgent {
		t.releases = t.releases[1:]
	}
}

// prune forgets releases older than grace and calls ended more than
// confirmCallMemory ago.
func (t *agentTrack) prune(now time.Time, grace time.Duration) {
	t.releases = slices.DeleteFunc(t.releases, func(r *releaseEvent) bool { return now.Sub(r.seen) > grace })
	t.order = slices.DeleteFunc(t.order, func(id string) bool {
		cp := t.calls[id]
		if !cp.ended.IsZero() && now.Sub(cp.ended) > confirmCallMemory {
			delete(t.calls, id)
			return true
		}
		return false
	})
}

func (cp *callParties) add(n string) {
	if n = normalizeParty(n); n != "" {
		cp.parties[n] = true
	}
}

// releaseTime is when the gateway says the release happened, else when the
// poller received it.
func releaseTime(ev events.AgentEvent, now time.Time) time.Time {
	switch {
	case !ev.GeneratedAt.IsZero():
		return ev.GeneratedAt
	case !ev.ReceivedAt.IsZero():
		return ev.ReceivedAt
	}
	return now
}

// parseReleaseContent reads an event's content tolerantly: a bare string
// (Call_Release's callid) or an object whose keys are lowercased and whose
// string or number values are kept as text.
func parseReleaseContent(raw json.RawMessage) (string, map[string]string) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s), nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return "", nil
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		var n json.Number
		switch {
		case json.Unmarshal(v, &s) == nil:
			out[strings.ToLower(k)] = strings.TrimSpace(s)
		case json.Unmarshal(v, &n) == nil:
			out[strings.ToLower(k)] = n.String()
		}
	}
	return "", out
}

// normalizeParty trims a party and drops the a/A prefix the gateway puts
// before agent IDs in Ringing.
func normalizeParty(n string) string {
	n = strings.TrimSpace(n)
	if len(n) > 1 && (n[0] == 'a' || n[0] == 'A') && strings.Trim(n[1:], "0123456789") == "" {
		return n[1:]
	}
	return n
}
