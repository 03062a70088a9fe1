package poller

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
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

// The gateway client is the poller's event source.
var _ eventSource = (*gateway.Client)(nil)

// bundle is one test's system: a real nats-server with JetStream and the
// streams provisioned, and the gateway simulator over real HTTPS.
type bundle struct {
	t      *testing.T
	url    string
	nc     *nats.Conn
	js     jetstream.JetStream
	sim    *gatewaysim.Sim
	simCfg gatewaysim.Config
	gwURL  string
	roots  *x509.CertPool
	logs   *testenv.SyncBuffer
	cfg    Config

	mu      sync.Mutex
	secrets []string // strings that must never appear in logs (GUIDs)
}

// setup starts NATS and the simulator for one test; cfg is the poller
// configuration every replica uses (its Logger writes to a buffer that is
// checked for secrets at the end).
func setup(t *testing.T, cfg Config, simCfg gatewaysim.Config) *bundle {
	t.Helper()
	return setupWrapped(t, cfg, simCfg, nil)
}

// setupWrapped is setup with the simulator served through wrap (to observe
// or alter the HTTP exchanges), unless wrap is nil.
func setupWrapped(t *testing.T, cfg Config, simCfg gatewaysim.Config, wrap func(http.Handler) http.Handler) *bundle {
	t.Helper()
	url := testenv.JetStream(t)
	sim := gatewaysim.New(simCfg)
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	// Clients that close a connection mid-handshake are expected here:
	// ServeGateway discards the server's error log.
	gw := testenv.ServeGateway(t, sim, gatewaysim.ServerConfig{Handler: h})

	b := &bundle{t: t, url: url, sim: sim, simCfg: simCfg, gwURL: gw.URL, roots: gw.Roots, logs: &testenv.SyncBuffer{}}
	b.nc, b.js = b.connect()
	cfg.Logger = zerolog.New(b.logs).Level(zerolog.DebugLevel)
	b.cfg = cfg
	testenv.Provision(t, b.js, topology.Config{DuplicateWindow: time.Minute, Pollers: cfg.Topology()})
	t.Cleanup(b.checkLogs)
	return b
}

func (b *bundle) connect() (*nats.Conn, jetstream.JetStream) {
	b.t.Helper()
	return testenv.Connect(b.t, b.url)
}

// newGateway returns a gateway client of the simulator with the poller's
// PollTimeout and room for every agent's long poll.
func (b *bundle) newGateway() *gateway.Client {
	b.t.Helper()
	gw, err := gateway.New(gateway.Config{BaseURL: b.gwURL, RootCAs: b.roots, RequestTimeout: 2 * time.Second,
		PollTimeout: b.cfg.withDefaults().PollTimeout, MaxConns: 1200})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(gw.Close)
	return gw
}

// replica is one running poller with its own NATS connection and
// gateway client.
type replica struct {
	name  string
	p     *Poller
	nc    *nats.Conn
	polls *countingSource
	stop  func() // cancels Run and waits for it; idempotent
}

// startReplica runs a poller named name until the test ends or stop.
func (b *bundle) startReplica(name string) *replica {
	b.t.Helper()
	return b.startReplicaWith(name, nil)
}

// startReplicaWith is startReplica with the gateway client wrapped by wrap
// (for fault injection), unless wrap is nil.
func (b *bundle) startReplicaWith(name string, wrap func(eventSource) eventSource) *replica {
	b.t.Helper()
	nc, js := b.connect()
	gw := b.newGateway()
	var inner eventSource = gw
	if wrap != nil {
		inner = wrap(gw)
	}
	src := &countingSource{src: inner, polls: map[int]int{}}
	cfg := b.cfg
	cfg.Instance = name
	p, err := New(cfg, js, src)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	r := &replica{name: name, p: p, nc: nc, polls: src}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.t.Errorf("poller %s: Run: %v", name, err)
			}
			gw.Close()
		})
	}
	b.t.Cleanup(r.stop)
	return r
}

// countingSource counts the polls a replica starts, per agent.
type countingSource struct {
	src   eventSource
	mu    sync.Mutex
	polls map[int]int
}

func (c *countingSource) PollEvent(ctx context.Context, agentID int, guid string) (gateway.Poll, error) {
	c.mu.Lock()
	c.polls[agentID]++
	c.mu.Unlock()
	return c.src.PollEvent(ctx, agentID, guid)
}

func (c *countingSource) count(agent int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polls[agent]
}

// signIn signs agents in at the simulator and registers their sessions.
func (b *bundle) signIn(agents []int) map[int]string {
	b.t.Helper()
	guids := map[int]string{}
	for _, a := range agents {
		guid, err := b.sim.SignIn(a)
		if err != nil {
			b.t.Fatal(err)
		}
		guids[a] = guid
		b.register(a, guid)
	}
	return guids
}

// register stores a usable session for agent.
func (b *bundle) register(agent int, guid string) {
	b.t.Helper()
	b.mu.Lock()
	b.secrets = append(b.secrets, guid)
	b.mu.Unlock()
	mode := 1
	if b.simCfg.AuthMode == 2 {
		mode = 2
	}
	v, _ := json.Marshal(events.Session{GUID: guid, AuthMode: mode, UpdatedAt: time.Now()})
	if _, err := b.kv(events.BucketSessions).Put(context.Background(), strconv.Itoa(agent), v); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bundle) kv(bucket string) jetstream.KeyValue {
	b.t.Helper()
	kv, err := b.js.KeyValue(context.Background(), bucket)
	if err != nil {
		b.t.Fatal(err)
	}
	return kv
}

// session returns agent's stored session and whether the key exists.
func (b *bundle) session(agent int) (events.Session, bool) {
	b.t.Helper()
	e, err := b.kv(events.BucketSessions).Get(context.Background(), strconv.Itoa(agent))
	if err != nil {
		return events.Session{}, false
	}
	var s events.Session
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		b.t.Fatal(err)
	}
	return s, true
}

// subjectCounts returns the number of messages per subject of
// StreamEvents matching filter.
func (b *bundle) subjectCounts(filter string) map[string]uint64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		b.t.Fatal(err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}
	}
	return info.State.Subjects
}

// lastMsg returns the last message on subject in StreamEvents, or nil.
func (b *bundle) lastMsg(subject string) *jetstream.RawStreamMsg {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		b.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil
	}
	return m
}

// checkLogs fails the test if any log line holds a registered GUID.
func (b *bundle) checkLogs() {
	b.t.Helper()
	logs := b.logs.Bytes()
	b.mu.Lock()
	defer b.mu.Unlock()
	// Every GUID, rotated ones included, ends in ".<Node>".
	if bytes.Contains(logs, []byte("."+gatewaysim.DefaultNode)) {
		b.t.Errorf("log output contains a GUID")
	}
	for _, secret := range b.secrets {
		if bytes.Contains(logs, []byte(secret)) {
			b.t.Errorf("log output contains a GUID")
			return
		}
	}
}

func agentsFrom(first, n int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = first + i
	}
	return a
}
