package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is where and how the endpoint is served.
type Config struct {
	// Listen is the TCP address, e.g. ":8080"; "" turns the endpoint off.
	Listen string
	// Pprof also serves the Go profiler under /debug/pprof/; it exposes
	// internals, so the port should stay private.
	Pprof bool
	// OnError receives an error that ends serving early (not the
	// shutdown); nil drops it.
	OnError func(error)
}

// ListenError is a [Config.Listen] address that could not be listened on.
type ListenError struct {
	Addr string
	Err  error // from net.Listen
}

func (e *ListenError) Error() string { return "health: listen " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ListenError) Unwrap() error { return e.Err }

// Start serves [Handler](r, g) (with [WithPprof] when cfg.Pprof) on
// cfg.Listen until ctx ends or the returned stop is called; stop waits for
// the server to end and may be called more than once. With cfg.Listen ""
// it serves nothing and stop does nothing. A listen error is a
// [*ListenError], returned at once.
func Start(ctx context.Context, cfg Config, r Checker, g prometheus.Gatherer) (stop func(), err error) {
	if cfg.Listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, &ListenError{Addr: cfg.Listen, Err: err}
	}
	handler := Handler(r, g)
	if cfg.Pprof {
		handler = WithPprof(handler)
	}
	return Serve(ctx, ln, handler, cfg.OnError), nil
}

// Serve serves h on ln until ctx ends or stop is called; stop shuts the
// server down (waiting at most 2 s for requests in flight) and waits for
// it to end. An error that ends serving early goes to onError (nil: dropped).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, onError func(error)) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && onError != nil {
			onError(err)
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
