package poller

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// renewParallelism bounds the lease renewals in flight at once.
const renewParallelism = 32

// leases holds this replica's per-agent poll leases: the keys
// "agent.<id>" of events.BucketPollers, created (never overwritten) by
// the replica that polls the agent, renewed every LeaseTTL/6 with a
// compare-and-set on their revision and deleted on hand-off. The bucket's
// TTL frees the agents of a replica that died or lost NATS.
type leases struct {
	kv    jetstream.KeyValue
	cfg   Config
	log   zerolog.Logger
	owner []byte

	mu      sync.Mutex
	held    map[int]*lease
	renewed chan struct{} // closed (and replaced) after each renewal round
}

func newLeases(kv jetstream.KeyValue, cfg Config, log zerolog.Logger) *leases {
	return &leases{kv: kv, cfg: cfg, log: log, owner: []byte(cfg.Instance),
		held: make(map[int]*lease), renewed: make(chan struct{})}
}

// lease is one held agent. validUntil is a conservative bound on how long
// no other replica can create the key; no poll may run past it.
type lease struct {
	agent      int
	key        string
	validUntil atomic.Int64  // unix nanos
	lost       chan struct{} // closed when a renewal found the key gone or taken

	mu       sync.Mutex // orders renewals and the release
	rev      uint64
	released bool
}

func leaseKey(agent int) string { return "agent." + strconv.Itoa(agent) }

// until returns the time up to which the lease is certainly held.
func (ls *lease) until() time.Time { return time.Unix(0, ls.validUntil.Load()) }

// extend records a successful write sent at sent.
func (ls *lease) extend(sent time.Time, validity time.Duration) {
	ls.validUntil.Store(sent.Add(validity).UnixNano())
}

// isLost reports whether a renewal found the lease gone.
func (ls *lease) isLost() bool {
	select {
	case <-ls.lost:
		return true
	default:
		return false
	}
}

// claim takes agent's lease, waiting while another replica holds it,
// until it succeeds, stop is closed or ctx ends. live tells whether a
// holder is a live member: a live holder is handing the agent off and
// deletes the key after its poll, so the key is checked every claimRetry;
// a dead holder's key is tried again only when its TTL runs out.
func (l *leases) claim(ctx context.Context, agent int, stop <-chan struct{}, live func(string) bool) (*lease, bool) {
	for {
		ls, wait := l.tryClaim(ctx, agent, live)
		if ls != nil {
			return ls, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-stop:
			return nil, false
		case <-time.After(wait):
		}
	}
}

// tryClaim makes one attempt: create the key when it is absent, or take it
// over when it holds this replica's own name (left by a create or delete
// whose reply was lost; only one loop per agent runs in a replica). It
// returns the lease, or how long to wait before the next attempt.
func (l *leases) tryClaim(ctx context.Context, agent int, live func(string) bool) (*lease, time.Duration) {
	key := leaseKey(agent)
	ctx, cancel := context.WithTimeout(ctx, l.cfg.opTimeout())
	defer cancel()
	e, err := l.kv.Get(ctx, key)
	var rev uint64
	sent := time.Now()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = l.kv.Create(ctx, key, l.owner)
	case err != nil:
	case bytes.Equal(e.Value(), l.owner):
		rev, err = l.kv.Update(ctx, key, l.owner, e.Revision())
	case live(string(e.Value())):
		return nil, l.cfg.claimRetry()
	default: // a dead holder's key expires LeaseTTL after its last write
		return nil, max(time.Until(e.Created().Add(l.cfg.LeaseTTL)), l.cfg.claimRetry()/10)
	}
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			l.log.Debug().Err(err).Int(keyAgentID, agent).Msg("lease claim failed")
		}
		return nil, l.cfg.claimRetry()
	}
	ls := &lease{agent: agent, key: key, lost: make(chan struct{}), rev: rev}
	ls.extend(sent, l.cfg.leaseValidity())
	l.mu.Lock()
	l.held[agent] = ls
	l.mu.Unlock()
	return ls, 0
}

// release forgets ls and deletes its key if it is still ours. Errors are
// ignored: the TTL frees the agent anyway.
func (l *leases) release(ls *lease) {
	l.mu.Lock()
	if l.held[ls.agent] == ls {
		delete(l.held, ls.agent)
	}
	l.mu.Unlock()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.released = true
	if ls.isLost() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.opTimeout())
	defer cancel()
	_ = l.kv.Delete(ctx, ls.key, jetstream.LastRevision(ls.rev))
}

// owned returns the agents whose lease is held, sorted.
func (l *leases) owned() []int {
	l.mu.Lock()
	out := make([]int, 0, len(l.held))
	for a, ls := range l.held {
		if !ls.isLost() {
			out = append(out, a)
		}
	}
	l.mu.Unlock()
	slices.Sort(out)
	return out
}

// owns reports whether the lease of agent is held.
func (l *leases) owns(agent int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.held[agent]
	return ok && !ls.isLost()
}

// renewedChan returns the channel closed at the end of the next renewal round.
func (l *leases) renewedChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed
}

// run renews every held lease each LeaseTTL/6 until ctx ends. A round
// that overruns delays the next one (ticks are dropped, not queued).
func (l *leases) run(ctx context.Context) {
	t := time.NewTicker(l.cfg.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.renewAll(ctx)
		l.mu.Lock()
		close(l.renewed)
		l.renewed = make(chan struct{})
		l.mu.Unlock()
	}
}

// renewAll renews the held leases, at most renewParallelism at once, and
// logs one line when some renewals failed for a reason other than a lost
// lease (then their validity runs down and their loops pause).
func (l *leases) renewAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.LeaseTTL/2)
	defer cancel()
	l.mu.Lock()
	all := make([]*lease, 0, len(l.held))
	for _, ls := range l.held {
		all = append(all, ls)
	}
	l.mu.Unlock()
	var g errgroup.Group
	g.SetLimit(renewParallelism)
	var failed, lost atomic.Int64
	var firstErr atomic.Value
	for _, ls := range all {
		g.Go(func() error {
			switch err := l.renew(ctx, ls); {
			case err == nil:
			case errors.Is(err, errLeaseLost):
				lost.Add(1)
			default:
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			return nil
		})
	}
	_ = g.Wait()
	if n := failed.Load(); n > 0 && ctx.Err() == nil {
		l.log.Warn().Int64("failed", n).Int("held", len(all)).Interface("error", firstErr.Load()).Msg("lease renewal failed")
	}
	if n := lost.Load(); n > 0 {
		l.log.Warn().Int64("lost", n).Msg("leases lost")
	}
}

var errLeaseLost = errors.New("poller: agent lease lost")

// renew rewrites ls's key with a compare-and-set on its revision. On a
// mismatch the key is read: if it still holds this replica's name, an
// earlier renewal whose reply was lost was applied, so its revision is
// taken and the renewal retried once. Otherwise (someone else holds it, or
// it expired) the lease is lost.
func (l *leases) renew(ctx context.Context, ls *lease) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.released || ls.isLost() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.opTimeout())
	defer cancel()
	for attempt := 0; ; attempt++ {
		sent := time.Now()
		rev, err := l.kv.Update(ctx, ls.key, l.owner, ls.rev)
		if err == nil {
			ls.rev = rev
			ls.extend(sent, l.cfg.leaseValidity())
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		e, gerr := l.kv.Get(ctx, ls.key)
		switch {
		case gerr == nil && bytes.Equal(e.Value(), l.owner) && attempt == 0:
			ls.rev = e.Revision()
			continue
		case gerr == nil, errors.Is(gerr, jetstream.ErrKeyNotFound):
			close(ls.lost)
			return errLeaseLost
		}
		return gerr
	}
}
