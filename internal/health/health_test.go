package health

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// /healthz answers 200 while the process runs; /readyz 200 while the NATS
// connection is up and 503 once the server is gone.
func TestHealthEndpoint(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := serveHealth(ctx, ln, Readiness{Conn: nc}, prometheus.NewRegistry())
	t.Cleanup(func() { cancel(); stop() })
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/livez"); code != 200 || body != "ok\n" {
		t.Fatalf("/livez = %d %q, want 200 ok", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz while connected = %d, want 200", code)
	}
	if code, _ := get("/nope"); code != 404 {
		t.Fatalf("/nope = %d, want 404", code)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.WaitFor(t, 5*time.Second, "/readyz to answer 503", func() bool { code, _ := get("/readyz"); return code == 503 })
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz without NATS = %d, want 200", code)
	}

	// The server ends with its context.
	cancel()
	testenv.WaitFor(t, 5*time.Second, "the health server to stop", func() bool {
		_, err := http.Get(base + "/healthz")
		return err != nil
	})
}

// serveHealth serves Handler(r, g) on ln until ctx ends or stop is called.
func serveHealth(ctx context.Context, ln net.Listener, r Checker, g prometheus.Gatherer) (stop func()) {
	return Serve(ctx, ln, Handler(r, g), nil)
}
