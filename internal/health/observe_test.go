package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// GET /readyz answers 503 with one line per failed check (NATS, streams,
// gateway) and 200 "ok" when all pass; GET /metrics serves the registry.
func TestReadyzChecks(t *testing.T) {
	nc, _ := bareJetStream(t)
	obs, err := NewObservability(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New
	cases := []struct {
		name     string
		r        Readiness
		code     int
		contains []string
	}{
		{"nats only", Readiness{Conn: nc}, 200, []string{"ok"}},
		{"all pass", Readiness{Conn: nc, Streams: func(context.Context) error { return nil }, Gateway: func(time.Time) error { return nil }}, 200, []string{"ok"}},
		{"streams", Readiness{Conn: nc, Streams: func(context.Context) error { return fail("CALLCONTROL_DLQ: stream not found") }}, 503,
			[]string{"streams: ", "CALLCONTROL_DLQ"}},
		{"gateway", Readiness{Conn: nc, Gateway: func(time.Time) error { return fail("no answer for 41s") }}, 503, []string{"gateway: ", "no answer"}},
		{"both", Readiness{Conn: nc, Streams: func(context.Context) error { return fail("s") }, Gateway: func(time.Time) error { return fail("g") }}, 503,
			[]string{"streams: ", "\ngateway: "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			stop := serveHealth(ctx, ln, c.r, obs.Registry)
			defer func() { cancel(); stop() }()
			code, body := httpGet(t, "http://"+ln.Addr().String()+"/readyz")
			if code != c.code {
				t.Fatalf("/readyz = %d %q, want %d", code, body, c.code)
			}
			for _, s := range c.contains {
				if !strings.Contains(body, s) {
					t.Errorf("/readyz body %q lacks %q", body, s)
				}
			}
			code, body = httpGet(t, "http://"+ln.Addr().String()+"/metrics")
			if code != 200 || !strings.Contains(body, "callcontrol_commands_total") || !strings.Contains(body, "go_goroutines") {
				t.Fatalf("/metrics = %d, lacks callcontrol or Go metrics:\n%.500s", code, body)
			}
		})
	}
}

// The stream check fails, naming the stream, until the streams exist; its
// answer is cached for its period; the dead-letter depth comes from it.
func TestStreamProbe(t *testing.T) {
	_, js := bareJetStream(t)
	ctx := context.Background()
	cached := &streamProbe{js: js, streams: workerStreams, every: time.Hour}
	if err := cached.check(ctx); err == nil || !strings.Contains(err.Error(), events.StreamCommands) {
		t.Fatalf("check before provisioning = %v, want an error naming %s", err, events.StreamCommands)
	}
	testenv.Provision(t, js, topology.Config{})
	if err := cached.check(ctx); err == nil {
		t.Fatal("a cached failure was not reused")
	}
	fresh := &streamProbe{js: js, streams: devStreams}
	if err := fresh.check(ctx); err != nil {
		t.Fatalf("check after provisioning: %v", err)
	}
	if _, err := js.Publish(ctx, events.SubjectDeadLetter, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := fresh.deadLetters(); n != 1 {
		t.Fatalf("dead letters = %v, want 1", n)
	}
}

// The gateway check passes with no traffic and while answers arrive, and
// fails once requests have got no answer for the whole window.
func TestGatewayReadiness(t *testing.T) {
	nc, js := bareJetStream(t)
	const window = 40 * time.Second
	obs, err := NewObservability(workerStreams, window)
	if err != nil {
		t.Fatal(err)
	}
	r, err := obs.Bind(nc, js)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := r.Gateway(now.Add(time.Hour)); err != nil {
		t.Fatalf("no traffic yet: %v, want ready", err)
	}
	noAnswer := &gateway.Error{Op: "disconnect", Err: context.DeadlineExceeded}
	obs.Metrics.GatewayRequest(metrics.OpDisconnect, time.Second, noAnswer)
	if err := r.Gateway(time.Now()); err != nil {
		t.Fatalf("failing for a moment: %v, want ready", err)
	}
	if err := r.Gateway(time.Now().Add(window)); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("failing for the window: %v, want not ready", err)
	}
	obs.Metrics.GatewayRequest(metrics.OpDisconnect, time.Second, &gateway.Error{Op: "disconnect", StatusCode: 200, RetCode: "200-204"})
	if err := r.Gateway(time.Now().Add(window)); err != nil {
		t.Fatalf("after an answer: %v, want ready", err)
	}
	// The dead-letter depth is registered for a role with the DLQ stream.
	if _, err := obs.Bind(nc, js); err == nil {
		t.Fatal("a second bind registered the dead-letter gauge twice")
	}
}

// The streams of the worker and of dev, as cmd/callcontrol lists them.
var (
	workerStreams = []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter}
	devStreams    = []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter, events.StreamEvents}
)

// bareJetStream starts a nats-server with JetStream for the test and
// connects to it.
func bareJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return testenv.Connect(t, testenv.JetStream(t))
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
