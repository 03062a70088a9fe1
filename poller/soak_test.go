package poller

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// Ten simulated minutes (one real minute with the gateway's clock running
// ten times faster) with 200 agents over two replicas, one of them killed
// half-way: the gateway's 2-minute no-poll sign-out never fires and no
// agent is ever polled twice at once.
func TestSoakNoSignOut(t *testing.T) {
	const (
		n     = 200
		speed = 10
		run   = 60 * time.Second
	)
	start := time.Now()
	clock := func() time.Time { return start.Add(speed * time.Since(start)) }
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second, NoPollSignOut: 2 * time.Minute, Now: clock})
	agents := agentsFrom(101, n)
	b.signIn(agents)
	rs := []*replica{b.startReplica("r1"), b.startReplica("r2")}
	testenv.WaitFor(t, 30*time.Second, "agents shared", func() bool { return shared(rs, n, 50) })

	testenv.WaitFor(t, run/2, "half-time", func() bool { return time.Since(start) >= run/2 || b.sim.SignedOut() > 0 })
	rs[0].nc.Close()
	rs[0].stop()
	polls := map[int]int64{}
	for _, a := range agents {
		polls[a] = b.sim.Polls(a)
	}
	testenv.WaitFor(t, run, "the end", func() bool { return time.Since(start) >= run || b.sim.SignedOut() > 0 })

	checkGateway(t, b)
	for _, a := range agents {
		if b.sim.Polls(a) <= polls[a] {
			t.Errorf("agent %d not polled after the kill", a)
		}
	}
	if len(rs[1].p.Owned()) != n {
		t.Errorf("survivor owns %d agents, want %d", len(rs[1].p.Owned()), n)
	}
	t.Logf("simulated %v; %d polls", clock().Sub(start).Round(time.Second), b.sim.Stats().Polls)
}
