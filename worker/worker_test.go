package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats-server keeps a few process-wide goroutines after shutdown.
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).logRejectedTLSConns"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).syncBlocks"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

// testConfig is a worker configuration with short timings for tests.
func testConfig() Config {
	return Config{
		Concurrency: 32, AckWait: 3 * time.Second, LeaseTTL: 2 * time.Second, FetchWait: 200 * time.Millisecond,
		InitialInterval: 20 * time.Millisecond, MaxInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		DefaultTTL: 30 * time.Second,
	}
}

func agentsFrom(first, n int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = first + i
	}
	return a
}

func customer(agent int) string { return "1380000" + strconv.Itoa(agent) }

// 1,000 commands with 20% transient gateway faults (including faults after
// the disconnect was executed): every command gets exactly one terminal
// result, and the simulator executes exactly one disconnect per command.
func TestThousandCommandsWithFaults(t *testing.T) {
	const n = 1000
	b := setup(t, testConfig(), gatewaysim.Config{})
	agents := agentsFrom(101, n)
	b.signIn(agents, customer)
	b.sim.SetFaults(gatewaysim.Faults{Rate: 0.2, Seed: 1, Kinds: []gatewaysim.Fault{
		gatewaysim.Fault5xx, gatewaysim.FaultReset, gatewaysim.FaultTimeout, gatewaysim.FaultResetAfter,
		gatewaysim.FaultRetCode}, RetCodes: []string{"000-004", "100-007", "105-002"}})
	b.startWorker(nil)
	b.startWorker(nil) // two replicas share the consumer
	for i, a := range agents {
		b.publish(events.DisconnectCommand{CommandID: cmdID(i), AgentID: a, Number: customer(a), TTL: time.Minute})
	}
	res := b.waitResults(n, 90*time.Second)
	for id, rs := range res {
		if len(rs) != 1 {
			t.Errorf("command %s has %d results, want 1", id, len(rs))
		}
		if rs[0].Status != events.StatusAccepted {
			t.Errorf("command %s: %s (%s), want accepted", id, rs[0].Status, rs[0].Reason)
		}
	}
	executed := map[string]int{}
	faults := 0
	for _, d := range b.sim.Disconnects() {
		if d.Executed {
			executed[d.Number]++
		}
		if d.Fault != "" {
			faults++
		}
	}
	for _, a := range agents {
		if executed[customer(a)] != 1 {
			t.Errorf("agent %d: %d executed disconnects, want 1", a, executed[customer(a)])
		}
	}
	if got := b.sim.Executed(); got != n {
		t.Errorf("simulator executed %d disconnects, want %d", got, n)
	}
	if faults < n/10 {
		t.Errorf("only %d faults injected; the test did not exercise retries", faults)
	}
	if o := b.sim.Overlaps(); o != 0 {
		t.Errorf("%d overlapping requests for one agent", o)
	}
	if d := len(b.deadLetters()); d != 0 {
		t.Errorf("%d dead letters for accepted commands", d)
	}
}

// The same command_id published twice, once within JetStream's duplicate
// window and once without a Nats-Msg-Id (so only the ledger can catch it):
// one execution, one result.
func TestDuplicateCommandExecutesOnce(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{201}, customer)
	b.startWorker(nil)
	cmd := events.DisconnectCommand{CommandID: "dup-1", AgentID: 201, Number: customer(201)}
	b.publish(cmd)
	b.publish(cmd) // de-duplicated by the stream
	b.waitResults(1, 10*time.Second)
	data, _ := cmd.MarshalJSON()
	b.publishRaw(data, "") // a new stream message with the same command_id
	testenv.WaitFor(t, 10*time.Second, "second delivery handled", func() bool { return consumerIdle(t, b) })
	res := b.results()
	if len(res["dup-1"]) != 1 || res["dup-1"][0].Status != events.StatusAccepted {
		t.Fatalf("results = %+v, want one accepted", res["dup-1"])
	}
	if got := b.sim.Executed(); got != 1 {
		t.Fatalf("executed %d, want 1", got)
	}
	if got := len(b.sim.Disconnects()); got != 1 {
		t.Fatalf("%d requests reached the gateway, want 1", got)
	}
	// The accepted command awaits its release event.
	kv, err := b.js.KeyValue(context.Background(), events.BucketPending)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), events.PendingKey(201, "dup-1"))
	if err != nil {
		t.Fatalf("pending record: %v", err)
	}
	var p events.Pending
	if err := json.Unmarshal(e.Value(), &p); err != nil || p.Number != customer(201) || !p.Deadline.After(p.AcceptedAt) {
		t.Fatalf("pending = %+v (%v)", p, err)
	}
}

// Two copies of one command delivered at the same time to two slots, with a
// slow gateway: the second finds the first's "started" record, waits for
// the agent, reads the ledger again and replays the result instead of
// sending a second request.
func TestConcurrentDuplicatesExecuteOnce(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{Latency: 300 * time.Millisecond})
	b.signIn([]int{202}, customer)
	b.startWorker(nil)
	data, _ := events.DisconnectCommand{CommandID: "dup-2", AgentID: 202, Number: customer(202)}.MarshalJSON()
	b.publishRaw(data, "")
	b.publishRaw(data, "")
	b.waitResults(1, 10*time.Second)
	testenv.WaitFor(t, 10*time.Second, "both deliveries handled", func() bool { return consumerIdle(t, b) })
	if got := len(b.sim.Disconnects()); got != 1 {
		t.Fatalf("%d requests reached the gateway, want 1", got)
	}
	if res := b.results()["dup-2"]; len(res) != 1 || res[0].Status != events.StatusAccepted {
		t.Fatalf("results = %+v, want one accepted", res)
	}
}

// consumerIdle reports whether every stored command was acknowledged.
func consumerIdle(t *testing.T, b *bundle) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := b.js.Consumer(ctx, events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// A worker killed while its POST is in flight (the gateway executes it but
// the answer never comes back): the redelivered command is not executed a
// second time, and it ends accepted.
func TestRedeliveryAfterWorkerKilledMidPOST(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{301}, customer)
	b.sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.FaultTimeoutAfter}})
	_, nc := b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "kill-1", AgentID: 301, Number: customer(301)})
	testenv.WaitFor(t, 10*time.Second, "the POST to reach the gateway", func() bool { return b.sim.Executed() == 1 })
	nc.Close() // the worker is gone: no ack, no lease renewal, no result
	b.sim.SetFaults(gatewaysim.Faults{})
	b.startWorker(nil)
	res := b.waitResults(1, 20*time.Second)
	if r := res["kill-1"]; len(r) != 1 || r[0].Status != events.StatusAccepted {
		t.Fatalf("results = %+v, want one accepted", r)
	}
	if got := b.sim.Executed(); got != 1 {
		t.Fatalf("executed %d disconnects, want 1", got)
	}
}

var _ disconnecter = (*countingGateway)(nil)

// A command published again with the same command_id after the streams'
// de-duplication window is a new message: the ledger still remembers the
// command, so it is neither executed nor given a second result message.
func TestRepublishedAfterTheDuplicateWindowGetsNoSecondResult(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	ctx := context.Background()
	for _, name := range []string{events.StreamCommands, events.StreamResults} {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		sc := s.CachedInfo().Config
		sc.Duplicates = 100 * time.Millisecond
		if _, err := b.js.UpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	b.signIn([]int{202}, customer)
	b.startWorker(nil)
	cmd := events.DisconnectCommand{CommandID: "again-1", AgentID: 202, Number: customer(202)}
	b.publish(cmd)
	b.waitResults(1, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // staging: past both duplicate windows
	b.publish(cmd)
	testenv.WaitFor(t, 10*time.Second, "second copy handled", func() bool { return consumerIdle(t, b) })
	if rs := b.results()["again-1"]; len(rs) != 1 || rs[0].Status != events.StatusAccepted {
		t.Fatalf("result messages = %+v, want the one accepted", rs)
	}
	if got := len(b.sim.Disconnects()); got != 1 {
		t.Fatalf("%d requests reached the gateway, want 1", got)
	}
}
