package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
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

// A command whose deadline passes while the gateway keeps failing ends
// expired, and no request reaches the gateway after the deadline.
func TestExpiresWhileGatewayFails(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{401}, customer)
	b.sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.Fault5xx, gatewaysim.FaultReset}})
	b.startWorker(nil)
	issued := time.Now()
	cmd := events.DisconnectCommand{CommandID: "exp-1", AgentID: 401, Number: customer(401), IssuedAt: issued, TTL: 700 * time.Millisecond}
	b.publish(cmd)
	res := b.waitResults(1, 10*time.Second)
	r := res["exp-1"]
	if len(r) != 1 || r[0].Status != events.StatusExpired {
		t.Fatalf("results = %+v, want one expired", r)
	}
	if !strings.HasPrefix(r[0].Reason, events.ReasonOutcomeUnknown+":") {
		t.Errorf("reason %q: requests without an answer leave the outcome unknown", r[0].Reason)
	}
	deadline := issued.Add(cmd.TTL)
	reqs := b.sim.Disconnects()
	if len(reqs) < 2 {
		t.Fatalf("%d requests, want retries before the deadline", len(reqs))
	}
	for _, d := range reqs {
		if d.At.After(deadline) {
			t.Errorf("request at %v, after the deadline %v", d.At, deadline)
		}
	}
	if b.sim.Executed() != 0 {
		t.Errorf("executed %d", b.sim.Executed())
	}
	// Already expired on arrival: never sent.
	b.publish(events.DisconnectCommand{CommandID: "exp-2", AgentID: 401, Number: customer(401), IssuedAt: issued.Add(-time.Hour), TTL: time.Second})
	res = b.waitResults(2, 10*time.Second)
	if r := res["exp-2"]; len(r) != 1 || r[0].Status != events.StatusExpired || r[0].Attempts != 0 {
		t.Fatalf("results = %+v, want expired with 0 attempts", r)
	}
	if got := len(b.sim.Disconnects()); got != len(reqs) {
		t.Fatalf("an expired command reached the gateway")
	}
}

// Invalid commands end rejected with a reason naming the field, and no
// request reaches the gateway.
func TestInvalidCommandsRejected(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{501}, customer)
	b.startWorker(nil)
	cases := []struct{ id, payload, field string }{
		{"bad-agent-low", `{"command_id":"bad-agent-low","agent_id":100,"number":"123"}`, "agent_id"},
		{"bad-agent-high", `{"command_id":"bad-agent-high","agent_id":60000,"number":"123"}`, "agent_id"},
		{"bad-agent-type", `{"command_id":"bad-agent-type","agent_id":"501","number":"123"}`, "agent_id"},
		{"bad-number-path", `{"command_id":"bad-number-path","agent_id":501,"number":"12/../34"}`, "number"},
		{"bad-number-long", `{"command_id":"bad-number-long","agent_id":501,"number":"1234567890123456789012345"}`, "number"},
		{"bad-number-empty", `{"command_id":"bad-number-empty","agent_id":501,"number":""}`, "number"},
		{"bad-ttl", `{"command_id":"bad-ttl","agent_id":501,"number":"123","ttl_ms":-5}`, "ttl_ms"},
		{"bad-time", `{"command_id":"bad-time","agent_id":501,"number":"123","expires_at":"tomorrow"}`, "expires_at"},
		{"bad-corr", `{"command_id":"bad-corr","agent_id":501,"number":"123","correlation_id":"a\r\nb"}`, "correlation_id"},
		{"bad-json", `{"command_id":"bad-json","agent_id":501,`, "payload"},
		{"bad-big", `{"command_id":"bad-big","agent_id":501,"number":"123","requested_by":"` + strings.Repeat("x", events.MaxCommandSize) + `"}`, "payload"},
		{"no-id", `{"agent_id":501,"number":"123"}`, "command_id"},
	}
	for _, c := range cases {
		b.publishRaw([]byte(c.payload), c.id)
	}
	res := b.waitResults(len(cases), 10*time.Second)
	for _, c := range cases {
		r := res[c.id]
		if len(r) != 1 {
			t.Errorf("%s: %d results, want 1", c.id, len(r))
			continue
		}
		if r[0].Status != events.StatusRejected || !strings.HasPrefix(r[0].Reason, c.field+":") {
			t.Errorf("%s: %s %q, want rejected naming %s", c.id, r[0].Status, r[0].Reason, c.field)
		}
	}
	if n := len(b.sim.Disconnects()); n != 0 {
		t.Fatalf("%d requests reached the gateway", n)
	}
	// Each rejected command is copied, unchanged, to the dead-letter stream
	// with its reason.
	dlq := b.deadLetters()
	for _, c := range cases {
		m, ok := dlq[c.id]
		if !ok {
			t.Errorf("%s: no dead letter", c.id)
			continue
		}
		if string(m.Data) != c.payload || !strings.HasPrefix(m.Header.Get(events.HeaderReason), c.field+":") ||
			m.Header.Get(events.HeaderStatus) != string(events.StatusRejected) {
			t.Errorf("%s: dead letter %q with headers %v", c.id, m.Data, m.Header)
		}
	}
}

// deadLetters returns the dead-letter stream's messages by command ID.
func (b *bundle) deadLetters() map[string]*jetstream.RawStreamMsg {
	b.t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, events.StreamDeadLetter)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out[m.Header.Get(events.HeaderCommandID)] = m
	}
	return out
}

// Many commands for few agents, on two workers: the simulator never sees
// two requests for one agent at once.
func TestOneOperationPerAgentAcrossReplicas(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{Latency: 15 * time.Millisecond})
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
// no_session; a GUID override that the gateway rejects fails with its
// retcode; neither the override nor any GUID is logged.
func TestSessionFailures(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{701}, customer)
	b.startWorker(nil)
	b.secrets = append(b.secrets, "bogus-guid.AgentGateway0")
	b.publish(events.DisconnectCommand{CommandID: "nosess", AgentID: 702, Number: "5551234"})
	b.publish(events.DisconnectCommand{CommandID: "badguid", AgentID: 701, Number: customer(701), GUID: "bogus-guid.AgentGateway0"})
	res := b.waitResults(2, 10*time.Second)
	if r := res["nosess"]; len(r) != 1 || r[0].Status != events.StatusFailed || !strings.HasPrefix(r[0].Reason, events.ReasonNoSession) {
		t.Errorf("nosess = %+v", r)
	}
	if r := res["badguid"]; len(r) != 1 || r[0].Status != events.StatusFailed || r[0].RetCode != "100-006" {
		t.Errorf("badguid = %+v", r)
	}
}

var _ disconnecter = (*countingGateway)(nil)

// countingGateway wraps a disconnecter and counts concurrent calls.
type countingGateway struct {
	next     disconnecter
	inFlight atomic.Int64
}

func (c *countingGateway) Disconnect(ctx context.Context, agentID int, number, guid string) error {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	return c.next.Disconnect(ctx, agentID, number, guid)
}

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

// A delivery that waits for its agent past the deadline while another
// delivery of the same command finished it must not overwrite that outcome
// with "expired": it replays the stored result.
func TestExpiredWhileWaitingKeepsFinishedOutcome(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{951}, customer)
	ctx := context.Background()
	leases, err := b.js.KeyValue(ctx, events.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Create(ctx, "agent.951", []byte("other-worker")); err != nil {
		t.Fatal(err)
	}
	ledgerKV, err := b.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "raced", AgentID: 951, Number: customer(951), IssuedAt: time.Now(), TTL: 800 * time.Millisecond})
	// Once the worker holds the message (waiting for the agent), the other
	// delivery "finishes" the command.
	cons, err := b.js.Consumer(ctx, events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the command in progress", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 1
	})
	stored := events.Result{CommandID: "raced", AgentID: 951, Number: customer(951), Status: events.StatusAccepted, RetCode: "0", Attempts: 1}
	rec, _ := json.Marshal(record{State: stateDone, Result: &stored})
	if _, err := ledgerKV.Put(ctx, "raced", rec); err != nil {
		t.Fatal(err)
	}
	res := b.waitResults(1, 10*time.Second)
	if r := res["raced"]; len(r) != 1 || r[0].Status != events.StatusAccepted || r[0].Attempts != 1 {
		t.Fatalf("results = %+v, want the stored accepted result", r)
	}
	e, err := ledgerKV.Get(ctx, "raced")
	if err != nil {
		t.Fatal(err)
	}
	var got record
	if err := json.Unmarshal(e.Value(), &got); err != nil || got.Result == nil || got.Result.Status != events.StatusAccepted {
		t.Fatalf("ledger = %s, want the accepted outcome kept", e.Value())
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
