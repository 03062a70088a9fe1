package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// A duplicate of a command (same command_id, another stream message: a
// publisher that did not set Nats-Msg-Id) waits for the agent while the
// first copy's request is on its way, and its deadline passes. It must not
// store and publish "expired": the first copy's answer comes back accepted
// a moment later. It waits for the ledger instead and replays that outcome.
func TestExpiredDuplicateWaitsForTheDeliveryInFlight(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{981}, customer)
	ctx := context.Background()
	leases, err := b.js.KeyValue(ctx, events.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	ledgerKV, err := b.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	// The first copy, in another worker: it holds the agent and has sent
	// its request ("started").
	if _, err := leases.Create(ctx, "agent.981", []byte("other-worker")); err != nil {
		t.Fatal(err)
	}
	started, _ := json.Marshal(record{State: stateStarted, Owner: "other-worker"})
	if _, err := ledgerKV.Create(ctx, "in-flight", started); err != nil {
		t.Fatal(err)
	}
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "in-flight", AgentID: 981, Number: customer(981),
		IssuedAt: time.Now(), TTL: 300 * time.Millisecond})
	// Past the deadline, with the agent still held, the duplicate must
	// neither store nor publish an outcome.
	testenv.WaitFor(t, 5*time.Second, "the duplicate to give up waiting for the agent", func() bool {
		return bytes.Contains(b.logs.Bytes(), []byte(`"command_id":"in-flight"`))
	})
	if res := b.results()["in-flight"]; len(res) != 0 {
		t.Fatalf("results = %+v, want none while the first copy is in flight", res)
	}
	// The first copy's answer arrives: accepted, stored, agent released.
	stored := events.Result{CommandID: "in-flight", AgentID: 981, Number: customer(981), Status: events.StatusAccepted, RetCode: "0", Attempts: 1}
	done, _ := json.Marshal(record{State: stateDone, Result: &stored})
	if _, err := ledgerKV.Put(ctx, "in-flight", done); err != nil {
		t.Fatal(err)
	}
	if err := leases.Delete(ctx, "agent.981"); err != nil {
		t.Fatal(err)
	}
	res := b.waitResults(1, 15*time.Second)
	if r := res["in-flight"]; len(r) != 1 || r[0].Status != events.StatusAccepted || r[0].Attempts != 1 {
		t.Fatalf("results = %+v, want the first copy's accepted result", r)
	}
	if n := len(b.sim.Disconnects()); n != 0 {
		t.Fatalf("%d requests reached the gateway, want none", n)
	}
}
