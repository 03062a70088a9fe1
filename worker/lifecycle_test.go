package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// Stopping a worker finishes the commands it is executing: when Run has
// returned, every command whose request reached the gateway has its result.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{Latency: 300 * time.Millisecond})
	agents := agentsFrom(801, 10)
	b.signIn(agents, customer)
	gw := &countingGateway{next: b.gw}
	stop, _ := b.startWorker(gw)
	for i, a := range agents {
		b.publish(events.DisconnectCommand{CommandID: cmdID(i), AgentID: a, Number: customer(a)})
	}
	testenv.WaitFor(t, 10*time.Second, "requests in flight", func() bool { return gw.inFlight.Load() >= 5 })
	stop()
	if n := gw.inFlight.Load(); n != 0 {
		t.Fatalf("%d requests still in flight after Run returned", n)
	}
	sent := map[string]bool{}
	for _, d := range b.sim.Disconnects() {
		sent[d.Number] = true
	}
	res := b.results()
	for i, a := range agents {
		if sent[customer(a)] && len(res[cmdID(i)]) != 1 {
			t.Errorf("command %s was sent but has %d results after shutdown", cmdID(i), len(res[cmdID(i)]))
		}
	}
	if len(res) < 5 {
		t.Fatalf("only %d results after shutdown", len(res))
	}
}

// A command whose every delivery dies with its worker (never acknowledged)
// still ends in exactly one result: failed, max_deliveries.
func TestEveryDeliveryDiedEndsFailed(t *testing.T) {
	cfg := testConfig()
	cfg.AckWait, cfg.MaxDeliver = time.Second, 2
	b := setup(t, cfg, gatewaysim.Config{})
	b.signIn([]int{901}, customer)
	b.publish(events.DisconnectCommand{CommandID: "doomed", AgentID: 901, Number: customer(901)})
	// A "worker" that takes the command and dies, twice.
	ctx := context.Background()
	cons, err := b.js.Consumer(ctx, events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < cfg.MaxDeliver; {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	b.startWorker(nil)
	res := b.waitResults(1, 15*time.Second)
	r := res["doomed"]
	if len(r) != 1 || r[0].Status != events.StatusFailed || !strings.HasPrefix(r[0].Reason, events.ReasonMaxDeliveries) {
		t.Fatalf("results = %+v, want one failed max_deliveries", r)
	}
	if n := len(b.sim.Disconnects()); n != 0 {
		t.Fatalf("%d requests reached the gateway", n)
	}
}

// While a command retries for longer than AckWait, InProgress heartbeats
// keep JetStream from redelivering it to another slot.
func TestHeartbeatsOutlastAckWait(t *testing.T) {
	cfg := testConfig()
	cfg.AckWait = time.Second
	b := setup(t, cfg, gatewaysim.Config{})
	b.signIn([]int{961}, customer)
	b.sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.Fault5xx}})
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "long", AgentID: 961, Number: customer(961), TTL: 20 * time.Second})
	testenv.WaitFor(t, 10*time.Second, "3 s of retries", func() bool {
		return len(b.sim.Disconnects()) > 0 && time.Since(b.sim.Disconnects()[0].At) > 3*cfg.AckWait
	})
	b.sim.SetFaults(gatewaysim.Faults{})
	res := b.waitResults(1, 10*time.Second)
	if r := res["long"]; len(r) != 1 || r[0].Status != events.StatusAccepted {
		t.Fatalf("results = %+v", r)
	}
	// The one disposal log line names the delivery that decided it.
	testenv.WaitFor(t, 5*time.Second, "the disposal log line", func() bool { return bytes.Contains(b.logs.Bytes(), []byte(`"command_id":"long"`)) })
	for _, line := range bytes.Split(b.logs.Bytes(), []byte("\n")) {
		if bytes.Contains(line, []byte(`"command_id":"long"`)) && !bytes.Contains(line, []byte(`"delivery":1,`)) {
			t.Fatalf("decided on a redelivery: AckWait fired during retries: %s", line)
		}
	}
}

// Every delivery died, the last one after storing the outcome in the ledger
// but before publishing it (and before its pending record was written).
// The max-deliveries advisory must publish the stored result, and write
// the pending record of an accepted one: "it is in the ledger" is not "it
// was published".
func TestEveryDeliveryDiedAfterStoringPublishesTheStoredResult(t *testing.T) {
	cfg := testConfig()
	cfg.AckWait, cfg.MaxDeliver = time.Second, 2
	b := setup(t, cfg, gatewaysim.Config{})
	b.signIn([]int{902}, customer)
	ctx := context.Background()
	stored := events.Result{CommandID: "stored-then-died", AgentID: 902, Number: customer(902), Status: events.StatusAccepted,
		RetCode: "0", Attempts: 1, CompletedAt: time.Now().UTC()}
	rec, _ := json.Marshal(ledger.Record{State: ledger.StateDone, Result: &stored})
	ledgerKV, _ := b.js.KeyValue(ctx, events.BucketLedger)
	if _, err := ledgerKV.Put(ctx, "stored-then-died", rec); err != nil {
		t.Fatal(err)
	}
	b.publish(events.DisconnectCommand{CommandID: "stored-then-died", AgentID: 902, Number: customer(902)})
	cons, err := b.js.Consumer(ctx, events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < cfg.MaxDeliver; { // taken and never answered, twice
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	b.startWorker(nil)
	res := b.waitResults(1, 15*time.Second)
	if r := res["stored-then-died"]; len(r) != 1 || r[0].Status != events.StatusAccepted || r[0].Attempts != 1 {
		t.Fatalf("results = %+v, want the stored accepted result", r)
	}
	pendingKV, _ := b.js.KeyValue(ctx, events.BucketPending)
	testenv.WaitFor(t, 5*time.Second, "the pending record", func() bool {
		_, err := pendingKV.Get(ctx, events.PendingKey(902, "stored-then-died"))
		return err == nil
	})
	if n := len(b.sim.Disconnects()); n != 0 {
		t.Fatalf("%d requests reached the gateway", n)
	}
}

// A shutdown timeout shorter than the gateway's answer does not cancel a
// request already sent: it runs to its answer, its outcome is recorded
// before Run returns, and the agent's lease is freed only after it, so a
// second worker neither sends it again nor overlaps it (000-007).
func TestShutdownNeverCancelsARequestSent(t *testing.T) {
	cfg := testConfig()
	cfg.ShutdownTimeout = 50 * time.Millisecond
	b := setup(t, cfg, gatewaysim.Config{Latency: 300 * time.Millisecond})
	agents := agentsFrom(811, 20)
	b.signIn(agents, customer)
	gw := &countingGateway{next: b.gateway(5 * time.Second)} // no request times out: each is answered
	stop, _ := b.startWorker(gw)
	for i, a := range agents {
		b.publish(events.DisconnectCommand{CommandID: cmdID(i), AgentID: a, Number: customer(a)})
	}
	testenv.WaitFor(t, 10*time.Second, "requests in flight", func() bool { return gw.inFlight.Load() >= 10 })
	stop()
	if n := gw.inFlight.Load(); n != 0 {
		t.Fatalf("%d requests still in flight after Run returned", n)
	}
	sent := len(b.sim.Disconnects())
	if res := b.results(); len(res) < sent {
		t.Fatalf("%d requests executed but only %d results recorded before exit", sent, len(res))
	}
	b.startWorker(gw)
	res := b.waitResults(len(agents), 20*time.Second)
	for i := range agents {
		if r := res[cmdID(i)]; len(r) != 1 || r[0].Status != events.StatusAccepted || r[0].Attempts != 1 {
			t.Errorf("%s: %+v, want one accepted result after one attempt", cmdID(i), r)
		}
	}
	if st := b.sim.Stats(); st.Executed != int64(len(agents)) || st.Overlaps != 0 {
		t.Fatalf("simulator executed %d releases for %d commands, %d overlapping requests", st.Executed, len(agents), st.Overlaps)
	}
}

// A slow gateway and no fresh call state: the call-info query and the
// disconnect each take most of what the agent lease gives one request.
// Each gets its own deadline from the lease, so the disconnect is not cut
// off by the time the query took (it was, and its retry overlapped the
// request the gateway was still executing: 000-007).
func TestSlowCallCheckDoesNotCutOffTheDisconnect(t *testing.T) {
	cfg := testConfig() // LeaseTTL 2s: one request may take up to 1.5s
	b := setup(t, cfg, gatewaysim.Config{Latency: 900 * time.Millisecond})
	agents := agentsFrom(831, 5)
	b.signIn(agents, customer)
	b.startWorker(b.gateway(5 * time.Second))
	for i, a := range agents {
		b.publish(events.DisconnectCommand{CommandID: cmdID(i), AgentID: a, Number: customer(a)})
	}
	res := b.waitResults(len(agents), 20*time.Second)
	for i := range agents {
		if r := res[cmdID(i)]; len(r) != 1 || r[0].Status != events.StatusAccepted || r[0].Attempts != 1 || r[0].Reason != "" {
			t.Errorf("%s: %+v, want accepted at the first attempt", cmdID(i), r)
		}
	}
	if st := b.sim.Stats(); st.Executed != int64(len(agents)) || st.Overlaps != 0 {
		t.Fatalf("simulator executed %d for %d commands, %d overlapping requests", st.Executed, len(agents), st.Overlaps)
	}
}
