package worker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leases gives one command at a time exclusive use of an agent, across all
// worker replicas: the gateway answers 000-007 to overlapping requests for
// an agent, and the "last call" rule makes their order matter.
//
// Inside the process a channel per agent serialises commands; across
// processes a key "agent.<id>" in [events.BucketLeases] is created (never
// overwritten) by the holder, renewed while it works and deleted when it is
// done. The bucket's TTL frees the agent of a worker that died.
type leases struct {
	kv    jetstream.KeyValue
	owner []byte
	ttl   time.Duration

	mu    sync.Mutex
	local map[int]chan struct{}
}

func newLeases(kv jetstream.KeyValue, owner string, ttl time.Duration) *leases {
	return &leases{kv: kv, owner: []byte(owner), ttl: ttl, local: make(map[int]chan struct{})}
}

// lease is one held agent. validUntil is a conservative bound on how long
// no other replica can take the agent over; no gateway request may run past it.
type lease struct {
	ls         *leases
	agent      int
	key        string
	rev        atomic.Uint64
	validUntil atomic.Int64 // unix nanos
}

var errLeaseLost = errors.New("worker: agent lease lost")

// acquire blocks until the agent is held or ctx ends.
func (l *leases) acquire(ctx context.Context, agent int) (*lease, error) {
	ch := l.localLock(agent)
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ls := &lease{ls: l, agent: agent, key: "agent." + strconv.Itoa(agent)}
	for {
		sent := time.Now()
		rev, err := l.kv.Create(ctx, ls.key, l.owner)
		if err == nil {
			ls.rev.Store(rev)
			ls.extend(sent)
			return ls, nil
		}
		// Held elsewhere (ErrKeyExists) or NATS trouble: try again until
		// ctx, which carries the command's deadline, ends.
		if serr := sleep(ctx, 25*time.Millisecond); serr != nil {
			<-ch
			return nil, serr
		}
	}
}

func (l *leases) localLock(agent int) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.local[agent]
	if !ok {
		ch = make(chan struct{}, 1)
		l.local[agent] = ch
	}
	return ch
}

// extend records that the key was written at sent: nobody else can create
// it before sent+ttl; keep a quarter of the TTL as margin for clock and
// server expiry granularity.
func (ls *lease) extend(sent time.Time) {
	ls.validUntil.Store(sent.Add(ls.ls.ttl * 3 / 4).UnixNano())
}

// until returns the time up to which the lease is certainly held.
func (ls *lease) until() time.Time { return time.Unix(0, ls.validUntil.Load()) }

// renew rewrites the key so its TTL starts again.
func (ls *lease) renew(ctx context.Context) error {
	sent := time.Now()
	rev, err := ls.ls.kv.Update(ctx, ls.key, ls.ls.owner, ls.rev.Load())
	if err != nil {
		return err
	}
	ls.rev.Store(rev)
	ls.extend(sent)
	return nil
}

// held reports whether any worker holds agent now (its key exists).
func (l *leases) held(ctx context.Context, agent int) (bool, error) {
	_, err := l.kv.Get(ctx, "agent."+strconv.Itoa(agent))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// release deletes the key if it is still ours and frees the agent locally.
// Errors are ignored: the TTL frees the agent anyway.
func (ls *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = ls.ls.kv.Delete(ctx, ls.key, jetstream.LastRevision(ls.rev.Load()))
	<-ls.ls.localLock(ls.agent)
}
