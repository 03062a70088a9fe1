package poller

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/kvwatch"
	"github.com/nats-io/nats.go/jetstream"
)

// registry is the poller's watched view of [events.BucketSessions]: which
// agents are registered (hold a usable session) and with which GUID.
//
// Every key remembers the revision of the newest entry applied, usable or
// not, and an older entry is ignored. That lets the poller apply its own
// writes (a rotated GUID, an invalidated or deleted session) at once,
// without waiting for the watch to echo them.
type registry struct {
	kv      jetstream.KeyValue
	feed    *sessionFeed // told of every watched entry; nil: none
	mu      sync.RWMutex
	entries map[int]regEntry
	ready   chan struct{} // closed once the initial values are loaded
	changed chan struct{} // signalled (never blocks) when the usable set changes
}

// regEntry is the newest known state of one agent's session.
type regEntry struct {
	guid   string // "" when not usable
	rev    uint64 // KV revision this state comes from
	usable bool
}

func newRegistry(kv jetstream.KeyValue) *registry {
	return &registry{kv: kv, entries: make(map[int]regEntry), ready: make(chan struct{}), changed: make(chan struct{}, 1)}
}

// get returns the newest known state of agent's session.
func (r *registry) get(agent int) (regEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[agent]
	return e, ok
}

// registered returns the agents with a usable session.
func (r *registry) registered() []int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]int, 0, len(r.entries))
	for a, e := range r.entries {
		if e.usable {
			out = append(out, a)
		}
	}
	return out
}

// set records e for agent unless a newer revision is already known.
func (r *registry) set(agent int, e regEntry) {
	r.mu.Lock()
	old, ok := r.entries[agent]
	if ok && old.rev >= e.rev {
		r.mu.Unlock()
		return
	}
	r.entries[agent] = e
	r.mu.Unlock()
	if old.usable != e.usable {
		signal(r.changed)
	}
}

// run keeps the view in step with the bucket until ctx ends,
// re-establishing the watch if it fails, and feeds every entry to feed.
func (r *registry) run(ctx context.Context) {
	apply, ready := r.apply, func() { closeOnce(r.ready) }
	if f := r.feed; f != nil {
		apply = func(e jetstream.KeyValueEntry) { r.apply(e); f.observe(e) }
		ready = func() { closeOnce(r.ready); f.loadedAll() }
	}
	kvwatch.Follow(ctx, r.kv, "", kvwatch.View{Apply: apply, Ready: ready})
}

// apply records a watched entry. A value that does not decode to a usable
// session counts as no session.
func (r *registry) apply(e jetstream.KeyValueEntry) {
	agent, err := strconv.Atoi(e.Key())
	if err != nil {
		return
	}
	var s events.Session
	usable := e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &s) == nil && s.Usable()
	re := regEntry{rev: e.Revision(), usable: usable}
	if usable {
		re.guid = s.GUID
	}
	r.set(agent, re)
}

// signal wakes whoever waits on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// closeOnce closes ch unless it is closed already. Only one goroutine
// may call it for a given channel.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// sleep waits for d or until ctx ends, returning ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
