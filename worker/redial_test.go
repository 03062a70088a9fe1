package worker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// The redial races of DESIGN.md #8, against the simulator over HTTPS with
// no poller (the worker checks with the gateway's call-info query): a
// command meant for call A, delivered once A has ended and the customer
// called back (call B), sends nothing, names A, and B stays up.

func TestRedialRaceCallIDOfAnEndedCall(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	const agent = 1201
	b.signIn([]int{agent}, customer)
	callA := b.lastCall(agent)
	b.endAndRedial(agent)
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "scoped-a", AgentID: agent, Number: customer(agent), CallID: callA})
	b.expectNotSent("scoped-a", agent, callA)
}

func TestRedialRacePlainCommandDeliveredDuringTheNextCall(t *testing.T) {
	cfg := testConfig()
	cfg.CallStartMargin = 100 * time.Millisecond
	b := setup(t, cfg, gatewaysim.Config{})
	const agent = 1202
	b.signIn([]int{agent}, customer)
	callA := b.lastCall(agent)
	// The worker is stopped meanwhile: stored during A, first delivered during B.
	b.publish(events.DisconnectCommand{CommandID: "plain-a", AgentID: agent, Number: customer(agent)})
	time.Sleep(2 * cfg.CallStartMargin) // staging: B begins well after the command was stored
	b.endAndRedial(agent)
	b.startWorker(nil)
	r := b.expectNotSent("plain-a", agent, "")
	if strings.Contains(r.Reason, callA) || r.CallID == b.lastCall(agent) {
		t.Fatalf("result %+v: pinned to a call that was up after the command was stored", r)
	}
}

func TestRedialRaceRetryDuringTheNextCall(t *testing.T) {
	// A long backoff, so that the customer calls back while the worker
	// waits between attempts, not between its check and its request (the
	// window no check can close, README "Call scope").
	cfg := testConfig()
	cfg.InitialInterval, cfg.MaxInterval, cfg.RandomizationFactor = time.Second, 2*time.Second, 0.01
	b := setup(t, cfg, gatewaysim.Config{})
	const agent = 1203
	b.signIn([]int{agent}, customer)
	callA := b.lastCall(agent)
	// Every request is refused as "being switched over" (000-004, transient,
	// not executed) until the customer has called back.
	b.sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.FaultRetCode}, RetCodes: []string{"000-004"}})
	gw := &countingGateway{next: b.gw}
	b.startWorker(gw)
	b.publish(events.DisconnectCommand{CommandID: "retry-a", AgentID: agent, Number: customer(agent), TTL: time.Minute})
	testenv.WaitFor(t, 10*time.Second, "a first request refused", func() bool { return gw.calls.Load() >= 1 })
	b.endAndRedial(agent)
	b.sim.SetFaults(gatewaysim.Faults{})
	r := b.expectNotSent("retry-a", agent, callA)
	if r.Attempts < 1 {
		t.Fatalf("result %+v: want the refused request counted", r)
	}
}

// lastCall returns the ID of agent's last call in the simulator.
func (b *bundle) lastCall(agent int) string {
	b.t.Helper()
	calls := b.sim.Calls(agent)
	if len(calls) == 0 {
		b.t.Fatalf("agent %d has no call", agent)
	}
	return calls[len(calls)-1].CallID
}

// endAndRedial ends agent's call (the customer hangs up) and has the
// customer call again at once: a new call from the same number.
func (b *bundle) endAndRedial(agent int) {
	b.t.Helper()
	b.sim.SetRedialAfter(0)
	if _, err := b.sim.EndCall(agent, ""); err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.sim.Redial(agent, customer(agent)); err != nil {
		b.t.Fatal(err)
	}
}

// expectNotSent waits for id's one result and checks that it failed with
// call_ended (naming call when not ""), that nothing was released, and
// that agent's redialed call is still up.
func (b *bundle) expectNotSent(id string, agent int, call string) events.Result {
	b.t.Helper()
	rs := b.waitResults(1, 15*time.Second)[id]
	if len(rs) != 1 {
		b.t.Fatalf("%s: %d results, want 1", id, len(rs))
	}
	r := rs[0]
	if r.Status != events.StatusFailed || !strings.HasPrefix(r.Reason, events.ReasonCallEnded) || call != "" && (!strings.Contains(r.Reason, call) || r.CallID != call) {
		b.t.Fatalf("%s: %+v; want failed, reason call_ended naming call %q", id, r, call)
	}
	if n := b.sim.Stats().Executed; n != 0 {
		b.t.Fatalf("the simulator released %d parties", n)
	}
	calls := b.sim.Calls(agent)
	if len(calls) != 1 || !calls[0].Redial || !slices.Contains(calls[0].Parties, customer(agent)) {
		b.t.Fatalf("agent %d's calls %+v: want the redialed call, still up", agent, calls)
	}
	return r
}

// The call state's "no" about a command stored a moment ago is not
// trusted: the event of the call that just began may still be on its way
// to it. The gateway decides, and the command for the new call runs.
func TestFreshStateThatHasNotSeenTheCallYetDefersToTheGateway(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	const agent = 1204
	b.signIn([]int{agent}, customer) // the call is up at the gateway...
	b.callState(agent, "")           // ...and not yet in the poller's state
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "just-begun", AgentID: agent, Number: customer(agent)})
	rs := b.waitResults(1, 10*time.Second)["just-begun"]
	if len(rs) != 1 || rs[0].Status != events.StatusAccepted || rs[0].CallID != b.sim.Disconnects()[0].CallID {
		t.Fatalf("results %+v, want accepted, scoped to the call the gateway released from", rs)
	}
}

// A replayed plain command is pinned as of when its first run was stored
// (Callcontrol-Replay-Stored-At), not when the replay was, nor by an
// issued_at the requester's clock set ahead. Found by the soak (seed
// 547594266): a replay released the party of a call that began after the
// command was first stored.
func TestReplayIsPinnedAsOfItsFirstRun(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	const agent = 1205
	firstRun := time.Now().Add(-3 * time.Second).UTC() // no call then
	b.signIn([]int{agent}, customer)                   // the call begins now
	b.startWorker(nil)
	cmd := events.DisconnectCommand{CommandID: "replayed-1", AgentID: agent, Number: customer(agent),
		IssuedAt: time.Now().Add(3 * time.Second).UTC(), TTL: time.Minute} // a clock 3 s ahead
	data, _ := cmd.MarshalJSON()
	b.publishRawHeaders(data, map[string]string{events.HeaderMsgID: "replay-replayed-1-7", events.HeaderReplayOf: "7",
		events.HeaderReplayStoredAt: firstRun.Format(time.RFC3339Nano)})
	rs := b.waitResults(1, 10*time.Second)["replayed-1"]
	if len(rs) != 1 || rs[0].Status != events.StatusFailed || !strings.HasPrefix(rs[0].Reason, events.ReasonCallEnded) ||
		!rs[0].StoredAt.Equal(firstRun) {
		t.Fatalf("results %+v, want failed call_ended, stored_at the first run's", rs)
	}
	if n := b.sim.Stats().Executed; n != 0 {
		t.Fatalf("the simulator released %d parties", n)
	}
}
