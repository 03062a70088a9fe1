package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// Many commands for few agents, on two workers: the simulator never sees
// two requests for one agent at once.
func TestOneOperationPerAgentAcrossReplicas(t *testing.T) {
	// The exclusion is tested on its own: with the call check, the
	// commands for numbers that are not in the agent's call (all but the
	// first) would never reach the gateway, leaving nothing to overlap.
	cfg := testConfig()
	cfg.SkipCallCheck = true
	b := setup(t, cfg, gatewaysim.Config{Latency: 15 * time.Millisecond})
	agents := agentsFrom(601, 4)
	b.signIn(agents, customer)
	b.startWorker(nil)
	b.startWorker(nil)
	const n = 200
	for i := range n {
		a := agents[i%len(agents)]
		b.publish(events.DisconnectCommand{CommandID: cmdID(i), AgentID: a, Number: strconv.Itoa(5550000 + i), TTL: time.Minute})
	}
	res := b.waitResults(n, 60*time.Second)
	for id, rs := range res {
		if len(rs) != 1 {
			t.Errorf("%s: %d results", id, len(rs))
		}
	}
	if got := len(b.sim.Disconnects()); got < n {
		t.Fatalf("%d requests, want at least %d", got, n)
	}
	if o := b.sim.Overlaps(); o != 0 {
		t.Fatalf("simulator saw %d overlapping requests for one agent", o)
	}
}

// Session errors: a command for an agent without a session fails with
// no_session; one whose session the gateway rejected, or whose GUID
// override it rejects, fails with session_invalid (and the retcode);
// neither the override nor any GUID is logged.
func TestSessionFailures(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{701}, customer)
	// A session the poller marked invalid (the gateway refused its GUID).
	kv, err := b.js.KeyValue(context.Background(), events.BucketSessions)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(events.Session{GUID: "dead-guid.AgentGateway0", State: events.SessionInvalid, Reason: "retcode 100-006"})
	if _, err := kv.Put(context.Background(), "703", v); err != nil {
		t.Fatal(err)
	}
	b.startWorker(nil)
	b.secrets = append(b.secrets, "bogus-guid.AgentGateway0", "dead-guid.AgentGateway0")
	b.publish(events.DisconnectCommand{CommandID: "nosess", AgentID: 702, Number: "5551234"})
	b.publish(events.DisconnectCommand{CommandID: "badguid", AgentID: 701, Number: customer(701), GUID: "bogus-guid.AgentGateway0"})
	b.publish(events.DisconnectCommand{CommandID: "invalid", AgentID: 703, Number: "5551234"})
	res := b.waitResults(3, 10*time.Second)
	if r := res["nosess"]; len(r) != 1 || r[0].Status != events.StatusFailed || !strings.HasPrefix(r[0].Reason, events.ReasonNoSession) {
		t.Errorf("nosess = %+v", r)
	}
	if r := res["badguid"]; len(r) != 1 || r[0].Status != events.StatusFailed || r[0].RetCode != "100-006" ||
		!strings.Contains(r[0].Reason, events.ReasonSessionInvalid) {
		t.Errorf("badguid = %+v, want failed 100-006 session_invalid", r)
	}
	if r := res["invalid"]; len(r) != 1 || r[0].Status != events.StatusFailed ||
		!strings.HasPrefix(r[0].Reason, events.ReasonSessionInvalid) || !strings.Contains(r[0].Reason, "100-006") {
		t.Errorf("invalid = %+v, want failed session_invalid naming the retcode", r)
	}
}

// countingGateway wraps a disconnecter and counts concurrent calls.
type countingGateway struct {
	next     disconnecter
	inFlight atomic.Int64
	calls    atomic.Int64 // disconnect requests sent
}

func (c *countingGateway) Disconnect(ctx context.Context, agentID int, number, guid string) error {
	c.calls.Add(1)
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	return c.next.Disconnect(ctx, agentID, number, guid)
}

func (c *countingGateway) CallInfo(ctx context.Context, agentID int, guid string) (gateway.CallInfo, error) {
	return c.next.CallInfo(ctx, agentID, guid)
}
