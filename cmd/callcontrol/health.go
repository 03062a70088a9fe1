package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// healthFlags is the optional health endpoint of the long-running roles.
type healthFlags struct{ listen string }

func (h *healthFlags) register(s *settings) {
	s.fs.StringVar(&h.listen, "health-listen", "", `address of the health endpoint (GET /healthz, GET /readyz), e.g. ":8080"; "" = off`)
}

// healthHandler answers GET /healthz with 200 while the process runs and
// GET /readyz with 200 while nc is connected to NATS, 503 otherwise.
func healthHandler(nc *nats.Conn) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !nc.IsConnected() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "nats: "+nc.Status().String())
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// startHealth serves the health endpoint on listen (nothing when listen is
// "") until ctx ends or the returned stop is called; stop waits for the
// server to end. A listen error is returned at once.
func (h *healthFlags) start(ctx context.Context, nc *nats.Conn) (stop func(), err error) {
	if h.listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", h.listen)
	if err != nil {
		return nil, fmt.Errorf("--health-listen (CALLCONTROL_HEALTH_LISTEN): %w", err)
	}
	return serveHealth(ctx, ln, nc), nil
}

// serveHealth serves healthHandler(nc) on ln until ctx ends or stop is called.
func serveHealth(ctx context.Context, ln net.Listener, nc *nats.Conn) (stop func()) {
	srv := &http.Server{Handler: healthHandler(nc), ReadHeaderTimeout: 5 * time.Second}
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
