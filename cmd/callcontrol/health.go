package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthFlags is the optional health and metrics endpoint of the
// long-running roles.
type healthFlags struct {
	listen string
	pprof  bool
}

func (h *healthFlags) register(s *settings) {
	defer s.group(groupOutput)()
	s.fs.StringVar(&h.listen, "health-listen", "", `address of the health and metrics endpoint (GET /livez or /healthz, /readyz, /metrics), e.g. ":8080"; "" = off`)
	s.fs.BoolVar(&h.pprof, "pprof", false, "also serve the Go profiler (/debug/pprof/) on --health-listen; it exposes internals: keep the port private")
}

// readiness is what GET /readyz checks, in order: the NATS connection,
// then (when connected) the streams, then the gateway.
type readiness struct {
	nc *nats.Conn
	// streams reports whether the role's streams are reachable (cached, so
	// a probe is cheap); nil: not checked.
	streams func(context.Context) error
	// gateway reports whether the gateway answered recently enough; nil:
	// not checked.
	gateway func(now time.Time) error
}

// readyCheck is what GET /readyz asks.
type readyCheck interface {
	problems(ctx context.Context) []string
}

// lateReadiness is the readiness of a role that serves its health
// endpoint before its first NATS connection: not ready ("nats: not
// connected yet") until set is called with the connection's checks.
type lateReadiness struct{ r atomic.Pointer[readiness] }

func (l *lateReadiness) set(r readiness) { l.r.Store(&r) }

func (l *lateReadiness) problems(ctx context.Context) []string {
	r := l.r.Load()
	if r == nil {
		return []string{"nats: not connected yet"}
	}
	return r.problems(ctx)
}

// problems returns one line per failed check, or nothing when ready.
func (r readiness) problems(ctx context.Context) []string {
	if !r.nc.IsConnected() {
		return []string{"nats: " + r.nc.Status().String()}
	}
	var out []string
	if r.streams != nil {
		if err := r.streams(ctx); err != nil {
			out = append(out, "streams: "+err.Error())
		}
	}
	if r.gateway != nil {
		if err := r.gateway(time.Now()); err != nil {
			out = append(out, "gateway: "+err.Error())
		}
	}
	return out
}

// healthHandler answers GET /livez (Kubernetes' name) and /healthz with
// 200 while the process runs,
// GET /readyz with 200 while every check of r passes (503 and one line per
// failed check otherwise), and GET /metrics with the metrics of g.
func healthHandler(r readyCheck, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	live := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("GET /livez", live)
	mux.HandleFunc("GET /healthz", live)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if p := r.problems(req.Context()); len(p) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(p, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// start serves the health endpoint on listen (nothing when listen is "")
// until ctx ends or the returned stop is called; stop waits for the
// server to end. A listen error is returned at once.
func (h *healthFlags) start(ctx context.Context, r readyCheck, g prometheus.Gatherer) (stop func(), err error) {
	if h.listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", h.listen)
	if err != nil {
		return nil, fmt.Errorf("--health-listen (CALLCONTROL_HEALTH_LISTEN): %w", err)
	}
	handler := healthHandler(r, g)
	if h.pprof {
		handler = withPprof(handler)
	}
	return serve(ctx, ln, handler), nil
}

// withPprof adds the net/http/pprof handlers under /debug/pprof/ to next.
func withPprof(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveHealth serves healthHandler(r, g) on ln until ctx ends or stop is called.
func serveHealth(ctx context.Context, ln net.Listener, r readiness, g prometheus.Gatherer) (stop func()) {
	return serve(ctx, ln, healthHandler(r, g))
}

// serve serves h on ln until ctx ends or stop is called.
func serve(ctx context.Context, ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "callcontrol: health endpoint:", err)
		}
	}()
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	unhook := context.AfterFunc(ctx, shutdown)
	return func() {
		unhook()
		shutdown()
		<-done
	}
}

// startLate serves the health endpoint before the NATS connection exists:
// /readyz answers 503 until bind is called with the connection, which
// binds obs to it (see startObserved).
func (h *healthFlags) startLate(ctx context.Context, obs *observability) (stop func(), bind func(*nats.Conn, jetstream.JetStream) error, err error) {
	late := &lateReadiness{}
	stop, err = h.start(ctx, late, obs.reg)
	if err != nil {
		return nil, nil, err
	}
	bind = func(nc *nats.Conn, js jetstream.JetStream) error {
		r, err := obs.bind(nc, js)
		if err != nil {
			return err
		}
		late.set(r)
		return nil
	}
	return stop, bind, nil
}

// startObserved binds obs to the process's NATS connection and serves
// the health endpoint (see start).
func (h *healthFlags) startObserved(ctx context.Context, obs *observability, nc *nats.Conn, js jetstream.JetStream) (stop func(), err error) {
	r, err := obs.bind(nc, js)
	if err != nil {
		return nil, err
	}
	return h.start(ctx, r, obs.reg)
}
