package poller

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// sessionFeed announces every change of [events.BucketSessions] as a
// session event, whoever wrote it: `callcontrol signin`, a plain KV put
// or delete, or a poller. It reads the registry's watch. A change is
// published by the replica that owns its agent by rendezvous hashing over
// the live members, and by the replica that made it (which knows why: a
// rotation, the gateway's retcode, a sign-out by the gateway), under the
// Nats-Msg-Id "session-<agent>-<revision>": when both publish, or a
// publish is retried, JetStream stores the event once.
//
// Changes are announced from the first complete load of the bucket on: a
// change made while no poller ran is not (the bucket holds the outcome).
// A watch set up again announces what changed in between, one event per
// key (the newest value).
type sessionFeed struct {
	p *Poller

	mu     sync.Mutex
	loaded bool   // the first initial values are in
	high   uint64 // newest revision seen
	notes  map[int][]sessionNote
	queue  []sessionChange
	wake   chan struct{}
}

// sessionNote is what a poller that writes a session knows about the
// change it makes, to announce it with its real kind and reason.
type sessionNote struct {
	ev   events.SessionEvent
	guid string // rotated: the GUID stored (matched, never published)
}

// sessionChange is one change to publish.
type sessionChange struct {
	ev  events.SessionEvent
	rev uint64
}

func newSessionFeed(p *Poller) *sessionFeed {
	return &sessionFeed{p: p, notes: make(map[int][]sessionNote), wake: make(chan struct{}, 1)}
}

// expect records that this replica is about to make the change n
// describes (before the write, so the watch cannot overtake it). Call
// forget when the write was not stored.
func (f *sessionFeed) expect(n sessionNote) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notes[n.ev.AgentID] = append(f.notes[n.ev.AgentID], n)
}

// forget drops a note whose write was not stored (or already announced).
func (f *sessionFeed) forget(n sessionNote) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropNote(n)
}

func (f *sessionFeed) dropNote(n sessionNote) {
	ns := f.notes[n.ev.AgentID]
	for i, o := range ns {
		if o == n {
			ns = append(ns[:i], ns[i+1:]...)
			break
		}
	}
	if len(ns) == 0 {
		delete(f.notes, n.ev.AgentID)
	} else {
		f.notes[n.ev.AgentID] = ns
	}
}

// loadedAll is the watch's Ready: the first time, every change from here
// on is announced.
func (f *sessionFeed) loadedAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loaded = true
}

// observe takes one watched entry: before the first complete load it
// only advances the revision seen; after it, each newer entry is a change
// to announce when this replica made it or owns its agent.
func (f *sessionFeed) observe(e jetstream.KeyValueEntry) {
	agent, err := strconv.Atoi(e.Key())
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Revision() <= f.high {
		return // a re-watch delivering what was seen already
	}
	f.high = e.Revision()
	if !f.loaded {
		return
	}
	ev, mine := f.match(agent, e)
	if !mine && owner(agent, f.p.mem.live(time.Now())) != f.p.cfg.Instance {
		return
	}
	f.queue = append(f.queue, sessionChange{ev: ev, rev: e.Revision()})
	signal(f.wake)
}

// match returns the event announcing e: the one this replica noted when
// it made the change (and true), else one derived from the entry. The
// caller holds f.mu.
func (f *sessionFeed) match(agent int, e jetstream.KeyValueEntry) (events.SessionEvent, bool) {
	var s events.Session
	put := e.Operation() == jetstream.KeyValuePut
	decoded := put && json.Unmarshal(e.Value(), &s) == nil
	for _, n := range f.notes[agent] {
		var ok bool
		switch n.ev.Kind {
		case events.SessionRotated:
			ok = decoded && s.Usable() && s.GUID == n.guid
		case events.SessionInvalidated:
			ok = decoded && s.State == events.SessionInvalid && s.Reason == n.ev.Reason
		case events.SessionSignedOut:
			ok = !put
		}
		if ok {
			f.dropNote(n)
			return n.ev, true
		}
	}
	ev := events.SessionEvent{AgentID: agent}
	switch {
	case !put:
		ev.Kind = events.SessionSignedOut
	case decoded && s.Usable():
		ev.Kind = events.SessionRegistered
	case decoded && s.State == events.SessionInvalid:
		ev.Kind, ev.Reason = events.SessionInvalidated, s.Reason
		if rc, ok := strings.CutPrefix(s.Reason, "retcode "); ok {
			ev.RetCode = rc
		}
	default:
		ev.Kind, ev.Reason = events.SessionInvalidated, "unusable session value"
	}
	return ev, false
}

// run publishes the queued changes in order until ctx ends; what is
// queued then gets up to the poller's operation timeout.
func (f *sessionFeed) run(ctx context.Context) {
	for {
		f.mu.Lock()
		q := f.queue
		f.queue = nil
		f.mu.Unlock()
		for _, c := range q {
			f.publish(ctx, c)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-f.wake:
		}
	}
}

// publish stores one change's event; once ctx has ended it gets the
// poller's operation timeout.
func (f *sessionFeed) publish(ctx context.Context, c sessionChange) {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), f.p.cfg.opTimeout())
		defer cancel()
	}
	f.p.publishSessionEvent(ctx, c.ev, c.rev)
}

// publishSessionEvent stores a session event (never with a GUID) under the
// Nats-Msg-Id of the registry revision it announces.
func (p *Poller) publishSessionEvent(ctx context.Context, ev events.SessionEvent, rev uint64) {
	ev.At = time.Now().UTC()
	m := nats.NewMsg(events.SessionEventSubject(ev.AgentID, ev.Kind))
	m.Data, _ = json.Marshal(ev) // a SessionEvent always encodes
	m.Header.Set(events.HeaderMsgID, "session-"+strconv.Itoa(ev.AgentID)+"-"+strconv.FormatUint(rev, 10))
	if err := p.publish(ctx, m); err != nil {
		p.log.Error().Err(err).Int(keyAgentID, ev.AgentID).Str("kind", string(ev.Kind)).Msg("session event lost")
	}
}
