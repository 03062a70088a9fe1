//go:build soak

package soak

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// inject runs one scheduled fault to its end (a killed process is
// restarted and ready, NATS is back, a fault window is over) and records it.
func (r *runner) inject(ctx context.Context, f faultOp) {
	rec := Fault{At: time.Now(), Kind: f.Kind}
	switch f.Kind {
	case "worker_sigkill", "worker_sigterm", "poller_sigkill", "poller_sigterm":
		role, sig, _ := strings.Cut(f.Kind, "_")
		p := r.procs[f.Target]
		if role == "poller" {
			p = r.procs[2+f.Target]
		}
		rec.Target = p.name
		r.l.scrape(p)
		s := syscall.SIGKILL
		if sig == "sigterm" {
			s = syscall.SIGTERM
		}
		rec.At = time.Now()
		r.stopProc(p, s)
		time.Sleep(f.Dur)
		r.restartProc(ctx, p)
	case "nats_restart":
		rec.Target = r.nats.url()
		if err := r.nats.restart(f.Dur); err != nil {
			r.crash(fmt.Sprintf("nats-server did not restart: %v", err))
		}
	case "gateway_slow":
		rec.Target = fmt.Sprintf("latency=%s", f.Param)
		r.sim.slow.Store(int64(f.Param))
		sleepCtx(ctx, f.Dur)
		r.sim.slow.Store(0)
	case "session_invalidated":
		// The agent signs in again elsewhere: the registered GUID dies.
		rec.Target = fmt.Sprint(f.Target)
		if guid, err := r.sim.sim.SignIn(f.Target); err == nil {
			r.addSecret(guid)
		}
		sleepCtx(ctx, f.Dur)
		r.repairSession(ctx, f.Target)
	case "session_forcelogout":
		rec.Target = fmt.Sprint(f.Target)
		r.forceLogout(ctx, f.Target)
		sleepCtx(ctx, f.Dur)
		r.repairSession(ctx, f.Target)
	case "requester_skew":
		rec.Target = fmt.Sprintf("crm-skewed offset=%s", f.Param)
		r.skew.Store(int64(f.Param))
		sleepCtx(ctx, f.Dur)
		r.skew.Store(0)
	default: // gateway_*: the simulator's fault plan
		plan := gatewaysim.Faults{Rate: f.Rate, Seed: f.Seed}
		switch k := strings.TrimPrefix(f.Kind, "gateway_"); k {
		case "mixed":
			plan.Kinds = []gatewaysim.Fault{gatewaysim.Fault5xx, gatewaysim.FaultReset, gatewaysim.FaultTimeout,
				gatewaysim.FaultRetCode, gatewaysim.FaultResetAfter, gatewaysim.FaultTimeoutAfter}
		case "queries":
			plan.Kinds, plan.Queries = []gatewaysim.Fault{gatewaysim.Fault5xx, gatewaysim.FaultReset, gatewaysim.FaultTimeout}, true
		case "retcode":
			plan.Kinds, plan.RetCodes = []gatewaysim.Fault{gatewaysim.FaultRetCode}, []string{"000-004", "100-007", "000-007"}
		default:
			plan.Kinds = []gatewaysim.Fault{gatewaysim.Fault(k)}
		}
		rec.Target = fmt.Sprintf("rate=%.2f kinds=%v queries=%v", plan.Rate, plan.Kinds, plan.Queries)
		r.sim.sim.SetFaults(plan)
		sleepCtx(ctx, f.Dur)
		r.sim.sim.SetFaults(gatewaysim.Faults{})
	}
	rec.Until = time.Now()
	r.mu.Lock()
	r.faults = append(r.faults, rec)
	r.mu.Unlock()
}

// repairSession signs the agent in anew, registers the session and puts
// it on a call, as an operator would after a session was lost.
func (r *runner) repairSession(ctx context.Context, agent int) {
	if err := r.signIn(ctx, agent); err != nil {
		r.crash(fmt.Sprintf("repair session of agent %d: %v", agent, err))
		return
	}
	_, _ = r.sim.sim.StartCall(agent, fmt.Sprintf("5550%d", agent))
}

// stopProc signals p on purpose and waits for it to end.
func (r *runner) stopProc(p *proc, sig syscall.Signal) {
	r.mu.Lock()
	p.intended = true
	r.mu.Unlock()
	p.signal(sig)
}

// restartProc starts p again and watches it for an exit nobody asked for.
func (r *runner) restartProc(ctx context.Context, p *proc) {
	for attempt := 0; ; attempt++ {
		err := r.l.start(ctx, p)
		if err == nil {
			break
		}
		r.crash(fmt.Sprintf("%s restart: %v", p.name, err))
		if attempt >= 3 || ctx.Err() != nil {
			return
		}
		time.Sleep(time.Second)
	}
	r.mu.Lock()
	p.intended = false
	r.mu.Unlock()
	go r.watch(ctx, p, p.done)
}

// watch reports an exit of p (this incarnation: done) that no fault
// caused, and starts it again.
func (r *runner) watch(ctx context.Context, p *proc, done chan struct{}) {
	<-done
	r.mu.Lock()
	intended := p.intended
	r.mu.Unlock()
	if intended || ctx.Err() != nil {
		return
	}
	r.crash(fmt.Sprintf("%s exited on its own: %s", p.name, p.cmd.ProcessState))
	r.restartProc(ctx, p)
}

func (r *runner) crash(s string) {
	r.mu.Lock()
	r.crashes = append(r.crashes, time.Now().Format("15:04:05.000")+" "+s)
	r.mu.Unlock()
}

// sleepCtx sleeps d or until ctx ends: the length of a fault window.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
