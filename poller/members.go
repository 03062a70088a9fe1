package poller

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/kvwatch"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// memberPrefix starts the membership keys of events.BucketPollers.
const memberPrefix = "member."

// members tracks the live poller replicas. Each replica puts
// "member.<instance>" every LeaseTTL/6 and watches "member.>". A member is
// live while its last heartbeat is younger than LeaseTTL and it has not
// deleted its key; the bucket's TTL removes a dead member's key, but an
// expiry produces no watch event, hence the local age check.
type members struct {
	kv   jetstream.KeyValue
	cfg  Config
	log  zerolog.Logger
	self string

	mu      sync.Mutex
	seen    map[string]time.Time // member -> time of its last heartbeat
	ready   chan struct{}        // closed once the initial values are loaded
	changed chan struct{}        // signalled when a member joins or leaves
}

func newMembers(kv jetstream.KeyValue, cfg Config, log zerolog.Logger) *members {
	return &members{kv: kv, cfg: cfg, log: log, self: cfg.Instance,
		seen: make(map[string]time.Time), ready: make(chan struct{}), changed: make(chan struct{}, 1)}
}

// live returns the live members at now, sorted; it always includes self.
func (m *members) live(now time.Time) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []string{m.self}
	for name, at := range m.seen {
		switch {
		case now.Sub(at) >= m.cfg.LeaseTTL:
			delete(m.seen, name) // dead: its key has expired or is about to
		case name != m.self:
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// isLive reports whether name is a live member now.
func (m *members) isLive(name string) bool {
	if name == m.self {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.seen[name]
	return ok && time.Since(at) < m.cfg.LeaseTTL
}

// heartbeat puts the membership key now and every LeaseTTL/6 until ctx
// ends. A failed put is logged; the next one retries.
func (m *members) heartbeat(ctx context.Context) {
	key := memberPrefix + m.self
	for {
		octx, cancel := context.WithTimeout(ctx, m.cfg.opTimeout())
		_, err := m.kv.Put(octx, key, []byte(m.self))
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("membership heartbeat failed")
		}
		if sleep(ctx, m.cfg.renewEvery()) != nil {
			return
		}
	}
}

// leave deletes the membership key, so the other replicas take over this
// one's agents without waiting for the TTL. Errors are ignored: the TTL
// removes the key anyway.
func (m *members) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.opTimeout())
	defer cancel()
	_ = m.kv.Delete(ctx, memberPrefix+m.self)
}

// run keeps the member view up to date until ctx ends.
func (m *members) run(ctx context.Context) {
	kvwatch.Follow(ctx, m.kv, memberPrefix+">", kvwatch.View{Apply: m.apply, Ready: func() { closeOnce(m.ready) }})
}

// apply records a heartbeat (its server time, capped at now) or a leave.
func (m *members) apply(e jetstream.KeyValueEntry) {
	name := strings.TrimPrefix(e.Key(), memberPrefix)
	m.mu.Lock()
	_, known := m.seen[name]
	if e.Operation() == jetstream.KeyValuePut {
		at := time.Now()
		if c := e.Created(); c.Before(at) {
			at = c
		}
		m.seen[name] = at
	} else {
		delete(m.seen, name)
	}
	m.mu.Unlock()
	if known != (e.Operation() == jetstream.KeyValuePut) {
		signal(m.changed)
	}
}

// owner returns the member that should poll agent: the one with the
// highest rendezvous weight. Adding a member moves only the agents it wins
// (about 1/n); removing one spreads its agents over all the others.
func owner(agent int, live []string) string {
	var best string
	var bestW uint64
	for _, m := range live {
		if w := weight(m, agent); best == "" || w > bestW || w == bestW && m < best {
			best, bestW = m, w
		}
	}
	return best
}

// weight hashes (member, agent) with FNV-1a and a SplitMix64 finaliser, so
// every replica computes the same value.
func weight(member string, agent int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(strconv.AppendInt(nil, int64(agent), 10))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
