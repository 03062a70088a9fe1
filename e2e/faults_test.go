//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// Sizes: chosen so the whole suite stays well under 20 minutes on a
// 2-core machine (see results.md).
const (
	killCommands    = 5000
	leaderCommands  = 1500
	cutCommands     = 2000
	pauseCommands   = 1000
	pollerAgents    = 200
	rollingCommands = 2000
	firstAgent      = 101
)

func ttlConst(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

// TestWorkerSIGKILL: one of two workers is killed with SIGKILL while
// commands are in flight and 10% of gateway requests fail.
func TestWorkerSIGKILL(t *testing.T) {
	started := time.Now()
	c := newCluster(t, clusterOpts{workers: 2, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(firstAgent, killCommands)
	c.faults(0.1)
	cmds := commands("kill", firstAgent, killCommands, ttlConst(2*time.Minute))
	go c.publish(context.Background(), cmds, 0)
	c.waitProgress(cmds, killCommands/5, 2*time.Minute)
	faultAt := time.Now()
	c.kill(c.workers[0])
	t.Logf("SIGKILL worker1 with %d of %d results in", c.col.done(cmds), len(cmds))
	c.waitDone(cmds, 4*time.Minute)
	r := c.check("worker SIGKILL mid-run, 10% gateway faults", cmds, faultAt)
	r.Sizes = fmt.Sprintf("%d agents, 2 workers", killCommands)
	record(t, r, started)
}

// TestStreamLeaderStop: the NATS node leading CALLCONTROL_COMMANDS is
// stopped while commands are published and executed, and restarted 15 s
// later.
func TestStreamLeaderStop(t *testing.T) {
	started := time.Now()
	c := newCluster(t, clusterOpts{workers: 2, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(firstAgent, leaderCommands)
	c.faults(0.1)
	cmds := commands("leader", firstAgent, leaderCommands, ttlConst(2*time.Minute))
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); c.publish(context.Background(), cmds, 50) }()
	c.waitProgress(cmds, leaderCommands/4, 2*time.Minute)

	var leader string
	retry(context.Background(), t, "stream info", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, events.StreamCommands)
		if err != nil {
			return err
		}
		if s.CachedInfo().Cluster == nil || s.CachedInfo().Cluster.Leader == "" {
			return fmt.Errorf("no leader")
		}
		leader = s.CachedInfo().Cluster.Leader
		return nil
	})
	idx := int(leader[len(leader)-1] - '1')
	if idx < 0 || idx > 2 {
		t.Fatalf("leader %q", leader)
	}
	node := c.nats[idx]
	faultAt := time.Now()
	grace := 5 * time.Second
	if err := node.Stop(context.Background(), &grace); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped stream leader %s with %d of %d results in", leader, c.col.done(cmds), len(cmds))
	time.Sleep(15 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted %s with %d of %d results in", leader, c.col.done(cmds), len(cmds))
	<-pubDone
	c.waitDone(cmds, 4*time.Minute)
	// The restarted node catches up.
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	retry(cctx, t, "restarted node current in the command stream", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, events.StreamCommands)
		if err != nil {
			return err
		}
		for _, p := range s.CachedInfo().Cluster.Replicas {
			if p.Name == leader && !p.Current {
				return fmt.Errorf("%s not current", leader)
			}
		}
		return nil
	})
	r := c.check("NATS stream leader stopped 15 s, restarted", cmds, faultAt)
	r.Sizes = fmt.Sprintf("%d agents at 50/s, 2 workers, 10%% faults", leaderCommands)
	record(t, r, started)
}

// TestWorkerPartitioned: a worker is cut off the network for 20 s
// (NATS and gateway) with commands in flight, then reconnected.
func TestWorkerPartitioned(t *testing.T) {
	started := time.Now()
	c := newCluster(t, clusterOpts{workers: 2, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(firstAgent, cutCommands)
	c.faults(0.1)
	cmds := commands("cut", firstAgent, cutCommands, ttlConst(2*time.Minute))
	go c.publish(context.Background(), cmds, 50)
	c.waitProgress(cmds, cutCommands/5, 2*time.Minute)
	faultAt := time.Now()
	c.disconnectNet(c.workers[0])
	t.Logf("cut worker1 off with %d of %d results in", c.col.done(cmds), len(cmds))
	time.Sleep(20 * time.Second)
	c.connectNet(c.workers[0], "worker1")
	t.Logf("reconnected worker1 with %d of %d results in", c.col.done(cmds), len(cmds))
	c.waitDone(cmds, 4*time.Minute)
	// Let the reconnected worker finish whatever it still held.
	time.Sleep(3 * time.Second)
	r := c.check("worker cut off the network 20 s", cmds, faultAt)
	r.Sizes = fmt.Sprintf("%d agents at 50/s, 2 workers, 10%% faults", cutCommands)
	record(t, r, started)
}

// TestGatewayDown: the gateway is frozen (container paused) for 30 s.
// Half the commands live 10 s and end expired, never executed late; the
// other half live 2 min and are executed once it is back.
func TestGatewayDown(t *testing.T) {
	started := time.Now()
	c := newCluster(t, clusterOpts{workers: 2, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(firstAgent, pauseCommands)
	ttl := func(i int) time.Duration {
		if i%2 == 0 {
			return 10 * time.Second
		}
		return 2 * time.Minute
	}
	c.pause(c.sim)
	faultAt := time.Now()
	cmds := commands("down", firstAgent, pauseCommands, ttl)
	c.publish(context.Background(), cmds, 0)
	t.Logf("gateway paused; %d commands published", len(cmds))
	time.Sleep(30*time.Second - time.Since(faultAt))
	resumedAt := time.Now()
	c.unpause(c.sim)
	t.Logf("gateway back with %d of %d results in", c.col.done(cmds), len(cmds))
	c.waitDone(cmds, 3*time.Minute)
	r := c.checkFrozen("gateway frozen 30 s (half TTL 10 s, half 2 min)", cmds, faultAt, faultAt, resumedAt)
	// Only requests in flight at the freeze can be processed late: at most
	// one per concurrency slot (64 per worker).
	if r.LateInFlight > 2*64 {
		t.Errorf("%d late executions: more than the requests in flight when the gateway froze", r.LateInFlight)
	}
	if r.LateInFlight > 0 {
		t.Logf("FINDING: %d commands with TTL 10 s were sent in time, executed by the gateway only when it resumed "+
			"(after their deadline), and ended %q: the worker cannot take back a request it sent", r.LateInFlight, events.StatusExpired)
	}
	r.Sizes = fmt.Sprintf("%d agents, 2 workers", pauseCommands)
	c.col.mu.Lock()
	var longNotAccepted int
	for i, cmd := range cmds {
		res := c.col.results[cmd.CommandID]
		if len(res) == 0 {
			continue
		}
		if i%2 == 1 && res[0].Status != events.StatusAccepted {
			longNotAccepted++
			if longNotAccepted <= 5 {
				t.Errorf("%s (TTL 2m): %s %s", cmd.CommandID, res[0].Status, res[0].Reason)
			}
		}
		// TTL 10 s: expired, or (README "Call scope") failed with
		// call_unknown when its call check could not reach the frozen
		// gateway before the deadline; never sent blind.
		callUnknown := res[0].Status == events.StatusFailed &&
			(strings.HasPrefix(res[0].Reason, events.ReasonCallUnknown+":") ||
				strings.HasPrefix(res[0].Reason, events.ReasonOutcomeUnknown+": "+events.ReasonCallUnknown+":"))
		if i%2 == 0 && res[0].Status != events.StatusExpired && res[0].Status != events.StatusAccepted && !callUnknown {
			t.Errorf("%s (TTL 10s): %s %s", cmd.CommandID, res[0].Status, res[0].Reason)
		}
	}
	c.col.mu.Unlock()
	record(t, r, started)
}

// TestPollerKilled: one of two pollers is killed; its agents are polled
// by the other within the poll lease TTL, no agent is polled twice at
// once or signed out, and every accepted disconnect has exactly one
// confirmation, confirmed.
func TestPollerKilled(t *testing.T) {
	started := time.Now()
	c := newCluster(t, clusterOpts{workers: 1, pollers: 2, simArgs: []string{"--sim-no-poll-signout", "2m"}})
	c.agents(firstAgent, pollerAgents)
	// Let the pollers share the agents out.
	if !waitFor(30*time.Second, func() bool { return c.stats().Polls > 2*pollerAgents }) {
		t.Fatalf("pollers are not polling: %+v", c.stats())
	}
	half := pollerAgents / 2
	before := commands("poll-a", firstAgent, half, ttlConst(time.Minute))
	c.publish(context.Background(), before, 0)
	c.waitDone(before, time.Minute)
	waitFor(30*time.Second, func() bool { return c.col.confirmed(before) == len(before) })

	faultAt := time.Now()
	c.kill(c.pollers[0])
	after := commands("poll-b", firstAgent+half, pollerAgents-half, ttlConst(time.Minute))
	c.publish(context.Background(), after, 0)
	c.waitDone(after, time.Minute)
	waitFor(45*time.Second, func() bool { return c.col.confirmed(after) == len(after) })
	recovered := time.Since(faultAt)

	all := append(append([]command{}, before...), after...)
	r := c.check("poller SIGKILL", all, faultAt)
	r.Sizes = fmt.Sprintf("%d agents, 1 worker, 2 pollers", pollerAgents)
	st := c.stats()
	if st.ConcurrentPolls != 0 || st.SignedOutByTimeout != 0 {
		t.Errorf("simulator: concurrent_polls=%d signed_out_by_timeout=%d", st.ConcurrentPolls, st.SignedOutByTimeout)
	}
	c.col.mu.Lock()
	var confirmed, unconfirmed, dup, missing int
	var lastConf time.Time
	for _, cmd := range all {
		cf := c.col.confs[cmd.CommandID]
		res := c.col.results[cmd.CommandID]
		if len(res) == 0 || res[0].Status != events.StatusAccepted {
			continue
		}
		switch {
		case len(cf) == 0:
			missing++
			t.Errorf("%s: accepted, no confirmation", cmd.CommandID)
			continue
		case len(cf) > 1:
			dup++
			t.Errorf("%s: %d confirmations", cmd.CommandID, len(cf))
		}
		if cf[0].Status == events.ConfirmationConfirmed {
			confirmed++
		} else {
			unconfirmed++
			t.Errorf("%s: %s", cmd.CommandID, cf[0].Status)
		}
		if cf[0].ConfirmedAt.After(lastConf) {
			lastConf = cf[0].ConfirmedAt
		}
	}
	c.col.mu.Unlock()
	r.Confirmations = fmt.Sprintf("%d confirmed, %d unconfirmed, %d missing, %d dup; concurrent polls %d, signed out %d",
		confirmed, unconfirmed, missing, dup, st.ConcurrentPolls, st.SignedOutByTimeout)
	r.Recover, r.Drain = 0, recovered
	if lastConf.After(faultAt) {
		r.Recover = lastConf.Sub(faultAt)
	}
	r.Pass = r.Pass && missing == 0 && dup == 0 && unconfirmed == 0
	record(t, r, started)
}

// TestRollingRestart: every worker is stopped with SIGTERM and started
// again, one after the other, while commands are executed.
func TestRollingRestart(t *testing.T) {
	started := time.Now()
	c := newCluster(t, clusterOpts{workers: 2, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(firstAgent, rollingCommands)
	c.faults(0.1)
	cmds := commands("roll", firstAgent, rollingCommands, ttlConst(3*time.Minute))
	go c.publish(context.Background(), cmds, 200)
	c.waitProgress(cmds, rollingCommands/10, 2*time.Minute)
	faultAt := time.Now()
	for i, w := range c.workers {
		c.restart(w, 25*time.Second)
		t.Logf("restarted worker%d with %d of %d results in", i+1, c.col.done(cmds), len(cmds))
	}
	c.waitDone(cmds, 4*time.Minute)
	r := c.check("rolling restart of all workers (SIGTERM)", cmds, faultAt)
	r.Sizes = fmt.Sprintf("%d agents at 200/s, 2 workers, 10%% faults", rollingCommands)
	record(t, r, started)
}
