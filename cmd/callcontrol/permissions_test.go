package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsConf is the production NATS configuration (deployments/nats).
const natsConf = "../../deployments/nats/nats.conf"

// violationLog collects the server's permission violations.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) add(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if strings.Contains(line, "Violation") {
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}
func (l *violationLog) Noticef(format string, v ...any) { l.add(format, v...) }
func (l *violationLog) Warnf(format string, v ...any)   { l.add(format, v...) }
func (l *violationLog) Fatalf(format string, v ...any)  { l.add(format, v...) }
func (l *violationLog) Errorf(format string, v ...any)  { l.add(format, v...) }
func (l *violationLog) Debugf(format string, v ...any)  { l.add(format, v...) }
func (l *violationLog) Tracef(format string, v ...any)  {}

func (l *violationLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// startConfiguredNATS runs one node of deployments/nats/nats.conf on a
// random loopback port, without the cluster (single node) and with a
// temporary store. It returns the client URL without credentials.
func startConfiguredNATS(t *testing.T, passwords map[string]string) (string, *violationLog) {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", "perm-test")
	for role, pw := range passwords {
		t.Setenv("CALLCONTROL_"+strings.ToUpper(role)+"_PASSWORD", pw)
	}
	opts, err := server.ProcessConfigFile(natsConf)
	if err != nil {
		t.Fatalf("%s: %v", natsConf, err)
	}
	if !opts.SyncAlways {
		t.Errorf("%s: JetStream must fsync every write (sync_interval: always)", natsConf)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir, opts.JetStreamMaxStore, opts.JetStreamMaxMemory = t.TempDir(), 1<<30, 256<<20
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	logs := &violationLog{}
	ns.SetLogger(logs, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL(), logs
}

// userURL puts user:password into a nats:// URL, as --nats-url takes it.
func userURL(url, user, password string) string {
	return strings.Replace(url, "nats://", "nats://"+user+":"+password+"@", 1)
}

// The roles of deployments/nats/accounts.conf can do their work and no
// more: the real worker and poller (provisioning included) run as their
// users, the admin seeds sessions, the publisher's disconnect is accepted
// and confirmed, analytics reads results but cannot publish commands, and
// the publisher cannot read the session registry (GUIDs are secrets).
func TestRolePermissions(t *testing.T) {
	pw := map[string]string{"admin": "a-pw", "publisher": "p-pw", "worker": "w-pw", "poller": "po-pw", "analytics": "an-pw", "api": "api-pw"}
	url, violations := startConfiguredNATS(t, pw)
	as := func(role string) string { return userURL(url, role, pw[role]) }

	var logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })

	sim, gwURL, ca := testGateway(t, gatewaysim.Config{AuthMode: 2, GUIDInterval: time.Second, PollHold: 300 * time.Millisecond})
	gwFlags := []string{"--gateway-url", gwURL, "--gateway-ca", ca}

	// A wrong password is refused.
	if nc, err := nats.Connect(userURL(url, "worker", "nope")); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong password")
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(role string, args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx, append([]string{role, "--nats-url", as(role)}, args...), &bytes.Buffer{}); err != nil {
				t.Errorf("%s: %v", role, err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	health := freeAddr(t)
	start("worker", append([]string{"--confirm-within", "10s", "--health-listen", health}, gwFlags...)...)
	start("poller", append([]string{"--poll-lease-ttl", "3s", "--gateway-poll-timeout", "2s", "--poll-gap", "50ms"}, gwFlags...)...)

	admin := connectAs(t, as("admin"))
	testenv.WaitFor(t, 30*time.Second, "the worker and the poller to provision", func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, e1 := admin.Consumer(c, events.StreamCommands, events.ConsumerWorkers)
		_, e2 := admin.KeyValue(c, events.BucketPollers)
		return e1 == nil && e2 == nil
	})

	// The worker serves its health endpoint (--health-listen), ready once
	// it has provisioned everything (the consumer found above is not the
	// last thing it provisions).
	testenv.WaitFor(t, 30*time.Second, "the worker ready", func() bool {
		ok, _ := httpOK("http://" + health + "/readyz")
		return ok
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + health + path)
		if err != nil {
			t.Fatalf("worker %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("worker %s = %d, want 200", path, resp.StatusCode)
		}
	}

	// Seed: `callcontrol signin` as the admin user, then a call per agent.
	for _, agent := range []string{"101", "102"} {
		var out bytes.Buffer
		if err := run(ctx, append([]string{"signin", "--agent", agent, "--nats-url", as("admin")}, gwFlags...), &out); err != nil {
			t.Fatalf("signin %s: %v (%s)", agent, err, logs.String())
		}
		if _, err := sim.StartCall(atoi(t, agent), "5550"+agent); err != nil {
			t.Fatal(err)
		}
	}

	// The publisher's disconnects are accepted and confirmed.
	for _, agent := range []string{"101", "102"} {
		var out bytes.Buffer
		err := run(ctx, []string{"disconnect", "--nats-url", as("publisher"), "--agent", agent, "--number", "5550" + agent,
			"--wait", "--timeout", "30s"}, &out)
		if err != nil {
			t.Fatalf("disconnect as publisher: %v\noutput: %s\nviolations: %q", err, out.String(), violations.snapshot())
		}
		if !regexp.MustCompile(`(?m)^accepted .*\n(?s:.*)^confirmed `).MatchString(out.String()) {
			t.Fatalf("want accepted and confirmed, got:\n%s", out.String())
		}
	}

	// Analytics reads results with an ordered consumer and with a durable
	// one of its own, and acknowledges.
	ajs := connectAs(t, as("analytics"))
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	oc, err := ajs.OrderedConsumer(actx, events.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("analytics: ordered consumer on results: %v", err)
	}
	if n := fetchN(t, oc, 2, false); n != 2 {
		t.Fatalf("analytics read %d results, want 2", n)
	}
	for _, stream := range []string{events.StreamEvents, events.StreamDeadLetter} {
		dc, err := ajs.CreateOrUpdateConsumer(actx, stream, jetstream.ConsumerConfig{Durable: "analytics-test", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("analytics: durable consumer on %s: %v", stream, err)
		}
		if stream == events.StreamEvents && fetchN(t, dc, 1, true) != 1 {
			t.Fatalf("analytics read no event")
		}
	}
	if got := violations.snapshot(); len(got) > 0 {
		t.Fatalf("permission violations while the roles did their work:\n%s", strings.Join(got, "\n"))
	}

	// What must be refused.
	commands := func() uint64 {
		s, err := admin.Stream(ctx, events.StreamCommands)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := commands()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }
	c, cc := short()
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = []byte(`{"command_id":"from-analytics","agent_id":101,"number":"5550101"}`)
	m.Header.Set(events.HeaderMsgID, "from-analytics")
	if _, err := ajs.PublishMsg(c, m); err == nil {
		t.Error("analytics published a command")
	}
	cc()
	c, cc = short()
	if _, err := ajs.CreateOrUpdateConsumer(c, events.StreamCommands, jetstream.ConsumerConfig{Durable: "sneaky"}); err == nil {
		t.Error("analytics created a consumer on the commands")
	}
	cc()
	c, cc = short()
	if _, err := ajs.KeyValue(c, events.BucketSessions); err == nil {
		t.Error("analytics opened the session registry")
	}
	cc()
	c, cc = short()
	if err := ajs.DeleteConsumer(c, events.StreamDeadLetter, events.ConsumerExhausted); err == nil {
		t.Error("analytics deleted the workers' consumer of exhausted commands")
	}
	cc()
	c, cc = short()
	if _, err := ajs.CreateOrUpdateConsumer(c, events.StreamDeadLetter, jetstream.ConsumerConfig{Durable: events.ConsumerExhausted,
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: events.SubjectMaxDeliveries}); err == nil {
		t.Error("analytics updated the workers' consumer of exhausted commands")
	}
	cc()
	if after := commands(); after != before {
		t.Errorf("commands stored: %d, then %d after analytics tried to publish", before, after)
	}

	pjs := connectAs(t, as("publisher"))
	c, cc = short()
	if _, err := pjs.KeyValue(c, events.BucketSessions); err == nil {
		t.Error("publisher opened the session registry")
	}
	cc()
	pnc := pjs.Conn()
	for _, subj := range []string{
		"$JS.API.DIRECT.GET.KV_" + events.BucketSessions + ".$KV." + events.BucketSessions + ".101",
		"$JS.API.STREAM.MSG.GET.KV_" + events.BucketSessions,
	} {
		if _, err := pnc.Request(subj, []byte(`{"last_by_subj":"$KV.callcontrol_sessions.101"}`), 500*time.Millisecond); err == nil {
			t.Errorf("publisher got an answer from %s", subj)
		}
	}
	subErr := make(chan error, 1)
	pnc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case subErr <- err:
		default:
		}
	})
	if _, err := pnc.SubscribeSync("$KV." + events.BucketSessions + ".>"); err != nil {
		t.Fatal(err)
	}
	_ = pnc.Flush()
	select {
	case err := <-subErr:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "Subscription") {
			t.Errorf("publisher subscribing to the sessions: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("publisher subscribed to the session registry's subjects without a permission violation")
	}
	c, cc = short()
	if _, err := pjs.OrderedConsumer(c, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAgentEvents + ".>"}}); err == nil {
		t.Error("publisher read agent events")
	}
	cc()
	// The worker cannot write the session registry (only the poller and
	// the admin store GUIDs).
	wjs := connectAs(t, as("worker"))
	c, cc = short()
	if _, err := wjs.Publish(c, "$KV."+events.BucketSessions+".101", []byte(`{"guid":"forged"}`)); err == nil {
		t.Error("worker wrote the session registry")
	}
	cc()
}

func connectAs(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	// The refusals are expected: keep their async errors out of the output.
	nc, err := nats.Connect(url, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// fetchN fetches up to n messages (acking each when ack) and returns how many came.
func fetchN(t *testing.T, c jetstream.Consumer, n int, ack bool) int {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if ack {
			if err := m.DoubleAck(context.Background()); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		got++
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	return got
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
