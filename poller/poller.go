// Package poller long-polls the CC-Gateway for every registered agent and
// republishes each event to JetStream, keeping the session registry's GUIDs
// current and feeding release events to the confirmer.
//
// Every replica runs one loop per agent it owns. Ownership is sharded by
// rendezvous hashing over the live replicas (membership keys in
// [events.BucketPollers]) and made exclusive by a per-agent lease key in
// the same bucket: a loop polls only while its lease is certainly held for
// longer than a poll can take, so no two replicas ever poll one agent at
// once, even across a NATS partition. A replica that dies loses its agents
// when the bucket's TTL removes its leases; the others then take them over.
//
// An event is stored in [events.StreamEvents] before the next poll starts,
// under a Nats-Msg-Id derived from the event, so a retried publish is
// stored once. A rotated GUID (AUTHMODE 2) is written to the registry at
// once; a session error marks the session invalid and a sign-out deletes it.
package poller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// eventSource is the part of the gateway client the poller uses.
type eventSource interface {
	PollEvent(ctx context.Context, agentID int, guid string) (gateway.Poll, error)
}

// Log keys.
const (
	keyAgentID = "agent_id"
	keyRetCode = "retcode"
	keyAttempt = "attempt"
	keyReason  = "reason"
	keyDelay   = "delay"
	keyEvent   = "event_type"
)

// Poller polls the gateway for the agents this replica owns. Create it with
// [New] and call [Poller.Run].
type Poller struct {
	cfg Config
	js  jetstream.JetStream
	gw  eventSource
	log zerolog.Logger

	// Set by Run before any loop starts.
	sessions jetstream.KeyValue
	calls    jetstream.KeyValue // events.BucketCalls
	// refreshSlots bounds the call-state refreshes in flight.
	refreshSlots slots
	reg          *registry
	feed         *sessionFeed
	mem          *members
	leases       atomic.Pointer[leases]
	conf         *confirmer

	mu    sync.Mutex
	loops map[int]*agentLoop // running loops, one per agent at most
	live  string             // last logged member set
}

// New checks cfg and returns a Poller that reads the registry and stores
// events through js and polls the gateway with gw (a *gateway.Client whose
// PollTimeout is cfg.PollTimeout, and whose MaxConns is at least the number
// of agents one replica may poll). The streams and buckets must exist
// (topology.Provision of topology.Shared|topology.Pollers with [Config.Topology]).
func New(cfg Config, js jetstream.JetStream, gw eventSource) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil || gw == nil {
		return nil, fmt.Errorf("poller: New: js and gw are required")
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With().Str("component", "poller").Logger()
	return &Poller{cfg: cfg, js: js, gw: gw, log: log, loops: make(map[int]*agentLoop), refreshSlots: make(slots, refreshParallel)}, nil
}

// Owned returns the agents whose lease this replica holds right now,
// sorted: the agents it polls (or is about to poll, or is handing off).
func (p *Poller) Owned() []int {
	if l := p.leases.Load(); l != nil {
		return l.owned()
	}
	return nil
}

// owns reports whether this replica holds agent's lease (for the confirmer).
func (p *Poller) owns(agent int) bool {
	if l := p.leases.Load(); l != nil {
		return l.owns(agent)
	}
	return false
}

// Run polls until ctx ends. Then it stops starting polls and leaves the
// membership (so the other replicas take over at once), waits for the
// polls in flight (they end within PollTimeout and are never cancelled: an
// event in a cancelled reply would be lost) and their publishes, releases
// its leases and returns nil. Publishes still failing LeaseTTL after ctx
// ended are abandoned (logged). Run returns an error only when it cannot
// start (a bucket is missing; stopped while starting is not an error) or
// the confirmer fails.
func (p *Poller) Run(ctx context.Context) error {
	if err := p.bind(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting, as the worker
		}
		return err
	}
	// Watches and renewals run on bg, which ends only after the loops.
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG, hbWG sync.WaitGroup
	defer func() { stopBg(); bgWG.Wait() }()
	bgWG.Go(func() { p.reg.run(bg) })
	bgWG.Go(func() { p.feed.run(bg) })
	bgWG.Go(func() { p.mem.run(bg) })
	bgWG.Go(func() { p.leases.Load().run(bg) })
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	hbWG.Go(func() { p.mem.heartbeat(hbCtx) })
	leave := func() { stopHB(); hbWG.Wait(); p.mem.leave() }
	if !p.awaitReady(ctx) {
		leave()
		return nil
	}

	// Polls, publishes and session writes run on work: detached from ctx so
	// a shutdown lets them finish, and cancelled LeaseTTL after ctx ends.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.conf.run(gctx) })
	p.log.Info().Str("instance", p.cfg.Instance).Msg("poller started")
	p.schedule(gctx, work, g)
	abandon := time.AfterFunc(p.cfg.LeaseTTL, cancelWork)
	defer abandon.Stop()
	leave()
	err := g.Wait()
	p.log.Info().Msg("poller stopped")
	return err
}

// bind opens the buckets and builds the parts Run works with.
func (p *Poller) bind(ctx context.Context) error {
	kvs := make([]jetstream.KeyValue, 3)
	for i, name := range []string{events.BucketSessions, events.BucketPollers, events.BucketCalls} {
		kv, err := p.js.KeyValue(ctx, name)
		if err != nil {
			return fmt.Errorf("poller: bucket %s: %w", name, err)
		}
		kvs[i] = kv
	}
	p.sessions, p.calls = kvs[0], kvs[2]
	p.reg = newRegistry(kvs[0])
	p.feed = newSessionFeed(p)
	p.reg.feed = p.feed
	p.mem = newMembers(kvs[1], p.cfg, p.log)
	p.leases.Store(newLeases(kvs[1], p.cfg, p.log))
	p.conf = newConfirmer(p.cfg, p.js, p.log, p.owns)
	return nil
}

// awaitReady waits until the registry and the member view are loaded, then
// one heartbeat period more, so replicas started together see each other
// before they claim agents (fewer hand-offs). It reports false when ctx
// ended first.
func (p *Poller) awaitReady(ctx context.Context) bool {
	for _, ch := range []chan struct{}{p.reg.ready, p.mem.ready} {
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
	return sleep(ctx, p.cfg.renewEvery()) == nil
}
