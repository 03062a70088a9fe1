package worker

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// bundle is one test's system: a real nats-server with JetStream, the
// gateway simulator over real HTTPS, and the streams provisioned.
type bundle struct {
	t    testing.TB
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	sim  *gatewaysim.Sim
	gw   *gateway.Client
	logs *testenv.SyncBuffer
	cfg  Config
	// gwURL and gwCAs reach the simulator, for a client of other settings.
	gwURL string
	gwCAs *x509.CertPool
	// secrets are strings that must never appear in logs (GUIDs).
	secrets []string
}

// setup starts NATS and the simulator for one test. cfg is the worker
// configuration the test will use (Logger is set to a buffer checked for
// secrets at the end).
func setup(t testing.TB, cfg Config, simCfg gatewaysim.Config) *bundle {
	t.Helper()
	url := testenv.JetStream(t)
	sim := testenv.StartGateway(t, simCfg)
	gw, err := gateway.New(gateway.Config{BaseURL: sim.URL, RootCAs: sim.Roots, RequestTimeout: 500 * time.Millisecond, MaxConns: 256})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)

	b := &bundle{t: t, url: url, sim: sim.Sim, gw: gw, logs: &testenv.SyncBuffer{}, gwURL: sim.URL, gwCAs: sim.Roots}
	b.nc, b.js = b.connect()
	cfg.Logger = zerolog.New(b.logs)
	b.cfg = cfg
	testenv.Provision(t, b.js, topology.Config{DuplicateWindow: time.Minute, Workers: cfg.Topology()})
	t.Cleanup(func() { b.checkLogs() })
	return b
}

// gateway returns a client of the simulator with request timeout d.
func (b *bundle) gateway(d time.Duration) *gateway.Client {
	b.t.Helper()
	gw, err := gateway.New(gateway.Config{BaseURL: b.gwURL, RootCAs: b.gwCAs, RequestTimeout: d, MaxConns: 256})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(gw.Close)
	return gw
}

func (b *bundle) connect() (*nats.Conn, jetstream.JetStream) {
	b.t.Helper()
	return testenv.Connect(b.t, b.url)
}

// startWorker runs a worker on its own NATS connection until the test ends
// or the returned stop is called (stop waits for Run to return).
func (b *bundle) startWorker(gw disconnecter) (stop func(), nc *nats.Conn) {
	b.t.Helper()
	nc, js := b.connect()
	if gw == nil {
		gw = b.gw
	}
	w, err := New(b.cfg, js, gw)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.t.Errorf("worker.Run: %v", err)
			}
		})
	}
	b.t.Cleanup(stop)
	return stop, nc
}

// signIn signs agents in at the simulator, gives each a call with the
// customer number customer(agent) and registers the GUIDs.
func (b *bundle) signIn(agents []int, customer func(int) string) map[int]string {
	b.t.Helper()
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, events.BucketSessions)
	if err != nil {
		b.t.Fatal(err)
	}
	guids := map[int]string{}
	for _, a := range agents {
		guid, err := b.sim.SignIn(a)
		if err != nil {
			b.t.Fatal(err)
		}
		guids[a] = guid
		b.secrets = append(b.secrets, guid)
		v, _ := json.Marshal(events.Session{GUID: guid, AuthMode: 1, UpdatedAt: time.Now()})
		if _, err := kv.Put(ctx, strconv.Itoa(a), v); err != nil {
			b.t.Fatal(err)
		}
		if customer != nil {
			if _, err := b.sim.StartCall(a, customer(a)); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	return guids
}

// publish sends a command with its command_id as Nats-Msg-Id.
func (b *bundle) publish(cmd events.DisconnectCommand) {
	b.t.Helper()
	data, err := json.Marshal(cmd)
	if err != nil {
		b.t.Fatal(err)
	}
	b.publishRaw(data, cmd.CommandID)
}

// publishRaw sends any payload; msgID may be empty (no de-duplication).
func (b *bundle) publishRaw(data []byte, msgID string) {
	b.t.Helper()
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	if msgID != "" {
		m.Header.Set(events.HeaderMsgID, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		b.t.Fatal(err)
	}
}

// publishRawHeaders publishes data as a command with exactly headers.
func (b *bundle) publishRawHeaders(data []byte, headers map[string]string) {
	b.t.Helper()
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	for k, v := range headers {
		m.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		b.t.Fatal(err)
	}
}

// results reads every result stored so far, grouped by command_id.
func (b *bundle) results() map[string][]events.Result {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, events.StreamResults)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string][]events.Result{}
	if info.State.Msgs == 0 {
		return out
	}
	cons, err := b.js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.t.Fatal(err)
	}
	for n := uint64(0); n < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(info.State.Msgs-n, 500)))
		if err != nil {
			b.t.Fatal(err)
		}
		for m := range batch.Messages() {
			var r events.Result
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				b.t.Fatal(err)
			}
			out[r.CommandID] = append(out[r.CommandID], r)
			n++
		}
		if batch.Error() != nil {
			b.t.Fatal(batch.Error())
		}
	}
	return out
}

// waitResults polls until n distinct commands have results, or fails.
func (b *bundle) waitResults(n int, within time.Duration) map[string][]events.Result {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		res := b.results()
		if len(res) >= n {
			return res
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("got results for %d commands, want %d within %v", len(res), n, within)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// checkLogs fails the test if any log line holds a registered GUID or an
// unmasked number that the test used.
func (b *bundle) checkLogs() {
	b.t.Helper()
	logs := b.logs.Bytes()
	for _, d := range b.sim.Disconnects() {
		if len(d.Number) > 4 && bytes.Contains(logs, []byte(d.Number)) {
			b.t.Errorf("log output contains the unmasked number %s", d.Number)
		}
	}
	for _, secret := range b.secrets {
		if bytes.Contains(logs, []byte(secret)) {
			b.t.Errorf("log output contains a GUID")
		}
	}
}

func cmdID(i int) string { return fmt.Sprintf("cmd-%05d", i) }

// boundWorker returns a worker bound to its streams and buckets but not
// running, for tests of one decision against real NATS.
func boundWorker(t testing.TB, cfg Config, js jetstream.JetStream, gw disconnecter) *Worker {
	t.Helper()
	w, err := New(cfg, js, gw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.bind(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}

// callState stands in for the agent's poller: it stores a fresh call state
// in which agent's last call is call with parties (no call when call is "").
func (b *bundle) callState(agent int, call string, parties ...string) {
	b.t.Helper()
	b.callStateAt(agent, time.Now().Add(time.Hour), call, parties...)
}

// callStateAt is callState observed at observed.
func (b *bundle) callStateAt(agent int, observed time.Time, call string, parties ...string) {
	b.t.Helper()
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, events.BucketCalls)
	if err != nil {
		b.t.Fatal(err)
	}
	st := events.CallState{AgentID: agent, Owner: "test", Polling: true, ObservedAt: observed}
	if call != "" {
		st.Calls = []events.Call{{CallID: call, Parties: parties, Phase: events.CallTalking, Since: time.Now().Add(-time.Minute)}}
	}
	v, _ := json.Marshal(st)
	if _, err := kv.Put(ctx, events.CallStateKey(agent), v); err != nil {
		b.t.Fatal(err)
	}
}
