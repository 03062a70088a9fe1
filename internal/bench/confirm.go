package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/poller"
)

type ConfirmResult struct {
	Agents      int           `json:"agents"`
	Confirmed   int           `json:"confirmed"`
	Unconfirmed int           `json:"unconfirmed"`
	Latency     Percentiles   `json:"event_to_confirmation"`
	Target      time.Duration `json:"target_p99_ns"`
}

type PollerResult struct {
	Agents          int           `json:"agents"`
	Hold            time.Duration `json:"hold_ns"`
	Window          time.Duration `json:"window_ns"`
	Cores           float64       `json:"cpu_cores"`
	Stats           ProcStats     `json:"process"`
	PolledEveryHold float64       `json:"polled_every_hold"` // fraction of agents polled in the window
}

func benchConfirm(ctx context.Context, rn *runner) error {
	sz, prog, rep := rn.cfg.Sizes, rn.prog, rn.rep
	n := sz.ConfirmAgents
	env, err := newBenchEnv(ctx, rn.cfg, gatewaysim.Config{AuthMode: 2}, 8)
	if err != nil {
		return err
	}
	defer env.close()
	agents := agentRange(101, n)
	prog.set("confirmation: signing agents in", 0, 0)
	if _, err := env.signIn(ctx, agents, true); err != nil {
		return err
	}
	if _, err := env.start(ctx, "poller", "--gateway-max-conns", strconv.Itoa(n+16)); err != nil {
		return err
	}
	if _, err := env.start(ctx, "worker", "--concurrency", "64"); err != nil {
		return err
	}
	if err := env.allPolled(ctx, prog, "confirmation: first polls", agents); err != nil {
		return err
	}
	confs, err := env.tap(events.SubjectConfirmations + ".>")
	if err != nil {
		return err
	}
	defer confs.stop()
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()
	every := time.Second / time.Duration(max(1, sz.Rate/5))
	if _, err := env.pipeline(ctx, prog, "confirmation: disconnects", results, agents, nil, every, nil); err != nil {
		return err
	}
	if err := waitProgress(ctx, prog, "confirmation: confirmations", 2*time.Minute, n, confs.count); err != nil {
		return err
	}
	arrived := firstArrivals(env.sim.Sim)
	seen := confs.seen()
	lat := make([]time.Duration, 0, n)
	for _, a := range agents {
		if t, ok := seen[CommandID("run", a)]; ok {
			lat = append(lat, t.Sub(arrived[a]))
		}
	}
	gap := poller.DefaultConfig().PollGap
	rep.Confirm = &ConfirmResult{Agents: n, Confirmed: confs.status(string(events.ConfirmationConfirmed)),
		Unconfirmed: confs.count() - confs.status(string(events.ConfirmationConfirmed)),
		Latency:     percentilesOf(lat), Target: 50*time.Millisecond + gap}
	return nil
}

func benchPoller(ctx context.Context, rn *runner) error {
	sz, prog, rep := rn.cfg.Sizes, rn.prog, rn.rep
	n := sz.PollAgents
	env, err := newBenchEnv(ctx, rn.cfg, gatewaysim.Config{AuthMode: 2, PollHold: sz.PollHold}, 64)
	if err != nil {
		return err
	}
	defer env.close()
	agents := agentRange(101, n)
	prog.set(fmt.Sprintf("poller: signing %d agents in", n), 0, 0)
	if _, err := env.signIn(ctx, agents, false); err != nil {
		return err
	}
	p, err := env.start(ctx, "poller", "--gateway-max-conns", strconv.Itoa(n+16))
	if err != nil {
		return err
	}
	if err := env.allPolled(ctx, prog, "poller: first polls", agents); err != nil {
		return err
	}
	// Every agent must be polled again within one hold, the pause after an
	// empty poll and a second of slack.
	window := sz.PollHold + poller.DefaultConfig().PollGap + time.Second
	polls := func() []int64 {
		c := make([]int64, n)
		for i, a := range agents {
			c[i] = env.sim.Sim.Polls(a)
		}
		return c
	}
	s0, err := p.stats()
	if err != nil {
		return err
	}
	p0, start := polls(), time.Now()
	prog.set(fmt.Sprintf("poller: idle-polling %d agents", n), 0, 0)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window): // a measurement window, not a synchronisation
	}
	s1, err := p.stats()
	if err != nil {
		return err
	}
	elapsed, p1 := time.Since(start), polls()
	again := 0
	for i := range p1 {
		if p1[i] > p0[i] {
			again++
		}
	}
	rep.Poller = &PollerResult{Agents: n, Hold: sz.PollHold, Window: elapsed,
		Cores: (s1.CPU - s0.CPU).Seconds() / elapsed.Seconds(), Stats: s1, PolledEveryHold: float64(again) / float64(n)}
	return nil
}
