package poller

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// agentLoop is the handle of one agent's poll loop.
type agentLoop struct {
	agent int
	stop  chan struct{} // closed to hand the agent off after the poll in flight
	once  sync.Once
}

func (l *agentLoop) handOff() { l.once.Do(func() { close(l.stop) }) }

// stopping reports whether the loop was asked to hand off.
func (l *agentLoop) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// schedule keeps one loop running for every registered agent this replica
// should own, until ctx ends. It recomputes ownership on every registry or
// membership change and every reconcileEvery (members also vanish silently).
// There is one goroutine per owned agent: parallelism is bounded by the
// number of registered agents, and a poll is mostly waiting.
func (p *Poller) schedule(ctx, work context.Context, g *errgroup.Group) {
	t := time.NewTicker(p.cfg.reconcileEvery())
	defer t.Stop()
	for {
		p.reconcile(ctx, work, g)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.reg.changed:
		case <-p.mem.changed:
		}
	}
}

// reconcile starts a loop for each agent this replica should own and has
// none for, and asks the loops of agents it should no longer own to hand
// them off. A loop that is handing off is left to finish; if its agent
// comes back, a new loop starts once the old one is gone.
func (p *Poller) reconcile(ctx, work context.Context, g *errgroup.Group) {
	live := p.mem.live(time.Now())
	p.logMembers(live)
	p.observeOwned()
	want := make(map[int]bool)
	for _, a := range p.reg.registered() {
		if owner(a, live) == p.cfg.Instance {
			want[a] = true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for a := range want {
		if _, ok := p.loops[a]; !ok {
			l := &agentLoop{agent: a, stop: make(chan struct{})}
			p.loops[a] = l
			g.Go(func() error {
				p.runAgent(ctx, work, l)
				return nil
			})
		}
	}
	for a, l := range p.loops {
		if !want[a] {
			l.handOff()
		}
	}
}

// forget removes a finished loop.
func (p *Poller) forget(l *agentLoop) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loops[l.agent] == l {
		delete(p.loops, l.agent)
	}
}

// logMembers logs the live member set when it changed.
func (p *Poller) logMembers(live []string) {
	s := strings.Join(live, ",")
	p.mu.Lock()
	changed := s != p.live
	p.live = s
	p.mu.Unlock()
	if changed {
		p.log.Info().Strs("members", live).Msg("poller members changed")
	}
}

// runAgent claims agent's lease, polls until the loop ends and releases
// the lease.
func (p *Poller) runAgent(ctx, work context.Context, l *agentLoop) {
	defer p.forget(l)
	ls, ok := p.leases.Load().claim(ctx, l.agent, l.stop, p.mem.isLive)
	if !ok {
		return
	}
	defer p.leases.Load().release(ls)
	log := p.log.With().Int(keyAgentID, l.agent).Logger()
	log.Debug().Msg("poll loop started")
	calls := p.startCallTracker(work, l.agent, ls)
	reason := p.pollLoop(ctx, work, l, ls, calls)
	calls.close() // before the lease is released: a successor finds the final state
	log.Debug().Str(keyReason, reason).Msg("poll loop stopped")
}
