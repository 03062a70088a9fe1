package poller

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// refreshMargin: a refresh claims the events up to this long before now
// (an answer to the outstanding poll may be on its way), and only once
// the poll has been outstanding for twice as long (the gateway has had it).
const refreshMargin = 100 * time.Millisecond

// Outcomes of a call-state write, for the metric and the log.
const (
	callWriteOK     = "written"
	callWriteFenced = "fenced" // another poller wrote the key, and this one no longer holds the agent
	callWriteFailed = "failed"
)

// callTracker keeps one polled agent's [events.CallState] in
// [events.BucketCalls]. The poll loop feeds it (apply, pollStarted,
// pollEnded) without ever waiting on NATS; a writer goroutine of its own
// stores the newest state, coalescing changes that come while a write is
// in flight, and refreshes ObservedAt while a poll is outstanding.
//
// Writes are compare-and-set on the revision this tracker last wrote or
// read, and are made only while the agent's poll lease is held: a previous
// owner's late write cannot overwrite this owner's, nor this owner's a
// successor's.
type callTracker struct {
	p   *Poller
	ls  *lease
	key string
	log zerolog.Logger

	mu        sync.Mutex
	book      *callBook
	dirty     bool         // book changed since the last write
	pollSince time.Time    // when the outstanding poll was sent; zero: none
	rev       uint64       // revision of the key last written or read; 0: absent
	failing   bool         // the last write failed (logged once)
	early     []timedEvent // events applied before the stored state was read; nil once it was

	kick chan struct{} // capacity 1: "the state changed"
	stop chan struct{}
	done chan struct{}
}

// startCallTracker starts the writer, which first continues from the
// agent's stored state (see [callBook.adopt]; a read that fails leaves the
// book incomplete) and writes it as this owner's. The loop polls
// meanwhile: the events it applies before the read is done are kept and
// applied after it, in order.
func (p *Poller) startCallTracker(work context.Context, agent int, ls *lease) *callTracker {
	t := &callTracker{p: p, ls: ls, key: events.CallStateKey(agent), log: p.log.With().Int(keyAgentID, agent).Logger(),
		book: newCallBook(agent), dirty: true, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		early: []timedEvent{}}
	t.book.state.Owner, t.book.state.Polling = p.cfg.Instance, true
	go t.run(work)
	return t
}

// timedEvent is an event and when it was received.
type timedEvent struct {
	ev events.AgentEvent
	at time.Time
}

// adopt reads the stored state, continues from it and applies the events
// that came meanwhile.
func (t *callTracker) adopt(work context.Context) {
	ctx, cancel := context.WithTimeout(work, t.p.cfg.callWriteTimeout())
	e, err := t.p.calls.Get(ctx, t.key)
	cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.rev = e.Revision()
		var prev events.CallState
		if json.Unmarshal(e.Value(), &prev) == nil {
			t.book.adopt(prev)
		}
	}
	early := t.early
	t.early = nil
	for _, te := range early {
		t.applyLocked(te.ev, te.at)
	}
}

// apply records an event of the agent received at at. A change is written
// with ObservedAt = at (when the book is complete).
func (t *callTracker) apply(ev events.AgentEvent, at time.Time) {
	t.mu.Lock()
	if t.early != nil { // the stored state is not read yet
		t.early = append(t.early, timedEvent{ev, at})
		t.mu.Unlock()
		return
	}
	changed := t.applyLocked(ev, at)
	t.mu.Unlock()
	if changed {
		signal(t.kick)
	}
}

func (t *callTracker) applyLocked(ev events.AgentEvent, at time.Time) bool {
	changed := t.book.apply(ev, at)
	if changed {
		t.dirty = true
		if t.book.complete && at.After(t.book.state.ObservedAt) {
			t.book.state.ObservedAt = at.UTC()
		}
	}
	return changed
}

// pollStarted records that a poll was sent at sent; pollEnded that it
// returned (with or without an event, or failed).
func (t *callTracker) pollStarted(sent time.Time) {
	t.mu.Lock()
	t.pollSince = sent
	t.mu.Unlock()
}

func (t *callTracker) pollEnded() {
	t.mu.Lock()
	t.pollSince = time.Time{}
	t.mu.Unlock()
}

// refresh advances ObservedAt to now - refreshMargin when the book is
// complete, the agent has a call and a poll has been outstanding for at
// least 2*refreshMargin: the gateway answers a held poll as soon as an
// event is queued, so none was since the poll reached it. It reports
// whether the refresh is due but cannot be made yet (no poll outstanding
// long enough): then it is tried again shortly.
func (t *callTracker) refresh(now time.Time) (retry bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.book.state
	if !t.book.complete || len(s.Calls) == 0 {
		return false
	}
	if t.pollSince.IsZero() || now.Sub(t.pollSince) < 2*refreshMargin {
		return true
	}
	if obs := now.Add(-refreshMargin); obs.After(s.ObservedAt) {
		s.ObservedAt = obs.UTC()
		t.dirty = true
	}
	return false
}

// run writes on every change and refreshes at most every
// CallStateRefresh, until stop is closed or work ends.
func (t *callTracker) run(work context.Context) {
	defer close(t.done)
	t.adopt(work)
	t.flush(work)
	every := t.p.cfg.CallStateRefresh
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-work.Done():
			return
		case <-t.stop:
			return
		case <-t.kick:
			if t.flush(work) {
				resetTimer(timer, every)
			}
		case now := <-timer.C:
			next := every // also after a failed write: it is retried then, or at the next change
			switch {
			case t.refresh(now):
				next = refreshMargin
			case t.isDirty() && t.p.refreshSlots.tryAcquire():
				t.flush(work)
				t.p.refreshSlots.release()
			}
			timer.Reset(next)
		}
	}
}

// refreshParallel bounds the refresh-only writes in flight per replica.
// A refresh that finds no slot is skipped (made at the next tick): under
// load the refreshes slow down first, and the writes that matter more
// (events, rotated GUIDs) keep the connection.
const refreshParallel = 8

// slots is a non-blocking counting semaphore.
type slots chan struct{}

func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// resetTimer makes timer fire d from now, whether it fired or not.
func resetTimer(timer *time.Timer, d time.Duration) {
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	timer.Reset(d)
}

func (t *callTracker) isDirty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dirty
}

// close ends the writer after the loop stopped polling and writes the
// final state, Polling false (best effort, bounded by the write timeout,
// on a context of its own: it runs at shutdown too). The caller releases
// the lease after it, so a successor finds the final state.
func (t *callTracker) close() {
	close(t.stop)
	<-t.done
	t.mu.Lock()
	t.book.state.Polling = false
	t.pollSince = time.Time{}
	t.dirty = true
	t.mu.Unlock()
	t.flush(context.Background())
}

// flush writes the state if it changed since the last write. It reports
// whether a write was made.
func (t *callTracker) flush(ctx context.Context) bool {
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return false
	}
	snap, rev := t.book.snapshot(), t.rev
	t.dirty = false
	t.mu.Unlock()
	rev, outcome, err := t.write(ctx, snap, rev)
	t.p.cfg.Metrics.CallStateWrite(outcome)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch outcome {
	case callWriteOK:
		t.rev = rev
		if t.failing {
			t.log.Info().Msg("call state written again")
		}
		t.failing = false
	case callWriteFailed:
		t.dirty = true
		if !t.failing && ctx.Err() == nil {
			t.log.Warn().Err(err).Msg("call state not written, will retry")
		}
		t.failing = true
	}
	return outcome == callWriteOK
}

// owned reports whether the agent's lease is certainly held now.
func (t *callTracker) owned() bool {
	return !t.ls.isLost() && time.Now().Before(t.ls.until())
}

// write stores snap over revision rev (0: the key is absent). A conflict
// (someone else wrote, or the key expired) is re-read and written over
// once, while the lease is held; without the lease the write is fenced.
func (t *callTracker) write(ctx context.Context, snap events.CallState, rev uint64) (uint64, string, error) {
	data, err := json.Marshal(snap)
	if err != nil {
		return 0, callWriteFailed, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.p.cfg.callWriteTimeout())
	defer cancel()
	for attempt := 0; ; attempt++ {
		if !t.owned() {
			return 0, callWriteFenced, nil
		}
		var n uint64
		if rev == 0 {
			n, err = t.p.calls.Create(ctx, t.key, data)
		} else {
			n, err = t.p.calls.Update(ctx, t.key, data, rev)
		}
		if err == nil {
			return n, callWriteOK, nil
		}
		if attempt > 0 || !(errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)) {
			return 0, callWriteFailed, err
		}
		e, gerr := t.p.calls.Get(ctx, t.key)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			rev = 0
		case gerr != nil:
			return 0, callWriteFailed, gerr
		default:
			rev = e.Revision()
		}
	}
}
