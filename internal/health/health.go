// Package health is the health and metrics endpoint of callcontrol's
// long-running roles: GET /livez and /healthz (200 while the process
// runs), GET /readyz (200 while every readiness check passes: the NATS
// connection, the role's streams, the gateway; 503 with one line per
// failed check otherwise), GET /metrics (the role's own Prometheus
// registry) and, as an option, the Go profiler under /debug/pprof/.
//
// [NewObservability] builds the registry with callcontrol's metrics;
// [Observability.Bind] ties it to the process's NATS connection; [Start]
// serves the endpoint. The package does not log: serving errors go to
// [Config.OnError].
package health

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Checker is what GET /readyz asks: one line per failed check, nothing
// when ready.
type Checker interface {
	Problems(ctx context.Context) []string
}

// Readiness is what GET /readyz checks, in order: the NATS connection,
// then (when connected) the streams, then the gateway.
type Readiness struct {
	// Conn is the process's NATS connection; required.
	Conn *nats.Conn
	// Streams reports whether the role's streams are reachable (cached, so
	// a probe is cheap); nil: not checked.
	Streams func(context.Context) error
	// Gateway reports whether the gateway answered recently enough; nil:
	// not checked.
	Gateway func(now time.Time) error
}

// Problems returns one line per failed check, or nothing when ready.
func (r Readiness) Problems(ctx context.Context) []string {
	if !r.Conn.IsConnected() {
		return []string{"nats: " + r.Conn.Status().String()}
	}
	var out []string
	if r.Streams != nil {
		if err := r.Streams(ctx); err != nil {
			out = append(out, "streams: "+err.Error())
		}
	}
	if r.Gateway != nil {
		if err := r.Gateway(time.Now()); err != nil {
			out = append(out, "gateway: "+err.Error())
		}
	}
	return out
}

// LateReadiness is the readiness of a role that serves its health
// endpoint before its first NATS connection: not ready ("nats: not
// connected yet") until Set is called with the connection's checks. Its
// zero value is ready to use; it is safe for concurrent use.
type LateReadiness struct{ r atomic.Pointer[Readiness] }

// Set makes r the checks from now on.
func (l *LateReadiness) Set(r Readiness) { l.r.Store(&r) }

// Problems is r's Problems once Set, "nats: not connected yet" before.
func (l *LateReadiness) Problems(ctx context.Context) []string {
	r := l.r.Load()
	if r == nil {
		return []string{"nats: not connected yet"}
	}
	return r.Problems(ctx)
}

// Handler answers GET /livez (Kubernetes' name) and /healthz with 200
// while the process runs, GET /readyz with 200 while every check of r
// passes (503 and one line per failed check otherwise), and GET /metrics
// with the metrics of g.
func Handler(r Checker, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	live := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("GET /livez", live)
	mux.HandleFunc("GET /healthz", live)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if p := r.Problems(req.Context()); len(p) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(p, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// WithPprof adds the net/http/pprof handlers under /debug/pprof/ to next.
func WithPprof(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
