package health

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).logRejectedTLSConns"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).syncBlocks"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

// Start serves nothing for "", a *ListenError for a busy address, and the
// profiler only when asked; LateReadiness is not ready until Set.
func TestStart(t *testing.T) {
	stop, err := Start(context.Background(), Config{}, &LateReadiness{}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(context.Background(), Config{Listen: ln.Addr().String()}, &LateReadiness{}, nil)
	var le *ListenError
	if !errors.As(err, &le) || le.Addr != ln.Addr().String() {
		t.Fatalf("Start on a busy address: %v, want a *ListenError", err)
	}
	for _, pprof := range []bool{false, true} {
		addr := freeAddr(t)
		stop, err := Start(context.Background(), Config{Listen: addr, Pprof: pprof}, &LateReadiness{}, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		code, body := httpGet(t, "http://"+addr+"/readyz")
		if code != 503 || !strings.Contains(body, "nats: not connected yet") {
			t.Errorf("/readyz before Set = %d %q", code, body)
		}
		if code, _ := httpGet(t, "http://"+addr+"/debug/pprof/"); (code == 200) != pprof {
			t.Errorf("pprof %v: /debug/pprof/ = %d", pprof, code)
		}
		stop()
		stop() // idempotent
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
