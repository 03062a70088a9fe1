package gateway

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTransport_Reset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /voicecall/101/disconnect/5550100", hijackClose)
	err := b.client.Disconnect(context.Background(), testAgent, testNumber, testGUID)
	e := asError(t, err)
	if e.StatusCode != 0 || e.RetCode != "" || e.Err == nil {
		t.Fatalf("error %+v, want a transport error", e)
	}
	wantClass(t, err, ClassTransient)
}

func TestTransport_ConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr)
	err = c.Disconnect(context.Background(), testAgent, testNumber, testGUID)
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("error %v, want a *net.OpError inside", err)
	}
	wantClass(t, err, ClassTransient)
}

// blockUntilGone is a handler that answers only after the client went
// away or the test ended.
func blockUntilGone(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

func TestTransport_RequestTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	b.mux.HandleFunc("POST /voicecall/101/disconnect/5550100", blockUntilGone(done))
	start := time.Now()
	err := b.client.Disconnect(context.Background(), testAgent, testNumber, testGUID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
	wantClass(t, err, ClassTransient)
	if RetCodeOf(err) != "" {
		t.Fatalf("retcode %q on a timeout", RetCodeOf(err))
	}
}

// TestTransport_CallerDeadline checks that a ctx deadline earlier than
// RequestTimeout wins, and that a canceled ctx sends nothing.
func TestTransport_CallerDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.RequestTimeout = time.Hour })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	b.mux.HandleFunc("POST /voicecall/101/disconnect/5550100", blockUntilGone(done))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.client.Disconnect(ctx, testAgent, testNumber, testGUID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	hits := b.hits.Load()
	err = b.client.Disconnect(ctx, testAgent, testNumber, testGUID)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	wantClass(t, err, ClassTransient)
	if b.hits.Load() != hits {
		t.Fatal("a request with a canceled ctx reached the server")
	}
}

// TestTransport_BodyTooLarge checks that an endless body is cut off after
// MaxBodyBytes and the error is transient.
func TestTransport_BodyTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	var written atomic.Int64
	b.mux.HandleFunc("POST /voicecall/101/disconnect/5550100", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"retcode":"0","message":"`)
		chunk := strings.Repeat("x", 4096)
		for written.Load() < 256<<20 { // stops at the first write after the client hung up
			n, err := io.WriteString(w, chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	err := b.client.Disconnect(context.Background(), testAgent, testNumber, testGUID)
	if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Fatalf("error %v, want body too large", err)
	}
	wantClass(t, err, ClassTransient)
	if e := asError(t, err); e.StatusCode != 200 {
		t.Fatalf("status %d", e.StatusCode)
	}
}

// TestTransport_ConnectionReuse checks that success and error answers
// alike leave the connection reusable.
func TestTransport_ConnectionReuse(t *testing.T) {
	t.Parallel()
	b := &bundle{mux: http.NewServeMux()}
	var conns atomic.Int64
	b.srv = httptest.NewUnstartedServer(b.handler())
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	c := newClient(t, b.srv.URL)
	answers := map[string]func(http.ResponseWriter){
		"1": func(w http.ResponseWriter) { respond(w, 200, ok) },
		"2": func(w http.ResponseWriter) { respond(w, 200, retcode("200-024", "gone")) },
		"3": func(w http.ResponseWriter) { respond(w, 503, "<html>busy</html>") },
		"4": func(w http.ResponseWriter) { respond(w, 404, "<html>not found</html>") },
		"5": func(w http.ResponseWriter) { respond(w, 200, "<html>error page</html>") },
		"6": func(w http.ResponseWriter) { respond(w, 200, `{"message":"x"}`) },
	}
	b.mux.HandleFunc("POST /voicecall/101/disconnect/{number}", func(w http.ResponseWriter, r *http.Request) {
		answers[r.PathValue("number")](w)
	})
	for range 3 {
		for _, n := range []string{"1", "2", "3", "4", "5", "6"} {
			c.Disconnect(context.Background(), testAgent, n, testGUID)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 18 sequential requests, want 1", n)
	}
}
