package poller

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// 500 agents over 3 replicas: every agent is polled by exactly one
// replica, each owns about a third. A replica cut off from NATS (while it
// can still reach the gateway) loses its agents to the others within
// LeaseTTL + PollTimeout + 2s, without a concurrent poll, without an agent
// signed out for lack of polls and without losing or duplicating an
// event. A 4th replica takes its share, again without concurrent polls.
func TestShardingAndFailover(t *testing.T) {
	// 500, not 1,000: with the race detector on 2 CPUs, 1,000 agents (1,000
	// lease renewals and 1,000 polls a second in one process) starved the
	// replicas until leases lapsed, on this commit's parent too.
	const n = 500
	cfg := testConfig()
	b := setup(t, cfg, gatewaysim.Config{PollHold: time.Second, NoPollSignOut: 20 * time.Second})
	agents := agentsFrom(101, n)
	b.signIn(agents)
	rs := []*replica{b.startReplica("r1"), b.startReplica("r2"), b.startReplica("r3")}

	start := time.Now()
	testenv.WaitFor(t, 60*time.Second, "every agent polled", func() bool {
		for _, a := range agents {
			if b.sim.Polls(a) == 0 {
				return false
			}
		}
		return true
	})
	testenv.WaitFor(t, 30*time.Second, "agents shared by 3 replicas", func() bool { return shared(rs, n, n/5) })
	t.Logf("all agents polled and shared after %v; owned %d/%d/%d", time.Since(start).Round(time.Millisecond),
		len(rs[0].p.Owned()), len(rs[1].p.Owned()), len(rs[2].p.Owned()))
	checkGateway(t, b)

	// Partition r1 from NATS; it keeps reaching the gateway until it stops.
	victim, survivors := rs[0], rs[1:]
	lost := victim.p.Owned()
	killed := time.Now()
	victim.nc.Close()
	budget := cfg.LeaseTTL + cfg.PollTimeout + 2*time.Second
	testenv.WaitFor(t, budget, "the partitioned replica's agents polled by survivors", func() bool {
		for _, a := range lost {
			if survivors[0].polls.count(a)+survivors[1].polls.count(a) == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("%d agents taken over after %v", len(lost), time.Since(killed).Round(time.Millisecond))
	victim.stop()
	testenv.WaitFor(t, 30*time.Second, "agents shared by 2 replicas", func() bool { return shared(survivors, n, n/5) })
	checkGateway(t, b)
	queueAndCheckOnce(t, b, agents, "AgentEvent_AfterKill")

	joined := time.Now()
	r4 := b.startReplica("r4")
	all := append(survivors, r4)
	testenv.WaitFor(t, 30*time.Second, "the 4th replica takes its share", func() bool { return shared(all, n, n/7) })
	// Leases are handed off by deletion, not left to expire.
	if d := time.Since(joined); d >= cfg.LeaseTTL {
		t.Errorf("the hand-off to a new replica took %v, want less than LeaseTTL", d)
	}
	t.Logf("owned %d/%d/%d %v after the join", len(all[0].p.Owned()), len(all[1].p.Owned()), len(all[2].p.Owned()),
		time.Since(joined).Round(time.Millisecond))
	queueAndCheckOnce(t, b, agents, "AgentEvent_AfterJoin")
	checkGateway(t, b)
}

// shared reports whether the replicas own n agents in total, no agent
// twice, each at least atLeast.
func shared(rs []*replica, n, atLeast int) bool {
	seen := map[int]bool{}
	for _, r := range rs {
		owned := r.p.Owned()
		if len(owned) < atLeast {
			return false
		}
		for _, a := range owned {
			if seen[a] {
				return false
			}
			seen[a] = true
		}
	}
	return len(seen) == n
}

// checkGateway fails the test if the gateway saw two polls of one agent at
// once or signed an agent out for lack of polls.
func checkGateway(t *testing.T, b *bundle) {
	t.Helper()
	if n := b.sim.ConcurrentPolls(); n != 0 {
		t.Errorf("ConcurrentPolls = %d, want 0", n)
	}
	if n := b.sim.SignedOut(); n != 0 {
		t.Errorf("SignedOut = %d, want 0", n)
	}
}

// queueAndCheckOnce queues a distinct event of type eventType for every
// agent and checks that each is stored exactly once.
func queueAndCheckOnce(t *testing.T, b *bundle, agents []int, eventType string) {
	t.Helper()
	for _, a := range agents {
		b.sim.QueueEvent(a, eventType, map[string]any{"callid": fmt.Sprintf("%s-%d", eventType, a)})
	}
	filter := events.SubjectAgentEvents + ".*." + eventType
	var counts map[string]uint64
	testenv.WaitFor(t, 30*time.Second, eventType+" events republished", func() bool {
		counts = b.subjectCounts(filter)
		return len(counts) == len(agents)
	})
	for _, a := range agents {
		if n := counts[events.AgentEventSubject(a, eventType)]; n != 1 {
			t.Errorf("agent %d: %d %s events stored, want 1", a, n, eventType)
		}
	}
}
