package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeouts of the malformed-answer tests, and the margin a call may take
// beyond its timeout (scheduling, the race detector, closing the TLS
// connection).
const (
	malformedRequestTimeout = 300 * time.Millisecond
	malformedPollTimeout    = 600 * time.Millisecond
	malformedMargin         = time.Second
)

// malformed is one broken gateway answer and the class it must get.
//
// Why each class (cc-gateway.md section 7: business errors come as HTTP
// 200 with a retcode; transport failures, 5xx and timeouts are transient):
//
//   - an answer that is not the gateway's JSON envelope (invalid JSON, an
//     HTML page, an empty or truncated body, a body or headers beyond the
//     limits, a stalled or trickled answer) is transient: it comes from a
//     proxy, an overloaded or restarting Tomcat, or the network, and the
//     next attempt usually gets a real answer. The caller's retry budget
//     and the command's deadline end the retries, and for a disconnect the
//     answer was not seen, so the worker treats the outcome as unknown;
//   - a 200 envelope without retcode is transient for the same reason: no
//     gateway version answers that way, so something in between mangled it;
//   - a 502/503/504 from a proxy is transient whatever its body;
//   - the Content-Type is not checked: Tomcat and proxies in front of the
//     gateway label the same JSON application/json, text/plain or
//     text/html, and the body alone says what the gateway did. A success
//     envelope labelled text/html is a success; an error retcode labelled
//     text/plain is classified by its retcode.
type malformed struct {
	name    string
	handler http.HandlerFunc
	want    Class
	wantErr error // wrapped by the error, when set
	// early: a limit, not the timeout, must end the call (its error is
	// not a deadline).
	early bool
}

// malformedCases returns the broken answers; done is closed when the test
// ends, so that endless handlers stop.
func malformedCases(done <-chan struct{}) []malformed {
	html502 := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>\r\n</html>\r\n"
	return []malformed{
		{"invalid JSON", answer(200, "application/json", `{"retcode":"0",`), ClassTransient, ErrMalformedResponse, false},
		{"missing retcode", answer(200, "application/json", `{"message":"success","result":{}}`), ClassTransient, ErrMalformedResponse, false},
		{"blank retcode", answer(200, "application/json", `{"message":"","retcode":"  "}`), ClassTransient, ErrMalformedResponse, false},
		{"retcode with a NUL", answer(200, "application/json", `{"message":"","retcode":"100-006\u0000"}`), ClassTransient, ErrMalformedResponse, false},
		{"retcode 0 padded", answer(200, "application/json", `{"message":"","retcode":" 0 "}`), ClassSuccess, nil, false},
		{"HTML 502 from a proxy", answer(502, "text/html", html502), ClassTransient, nil, false},
		{"HTML page with 200", answer(200, "text/html", "<html><body>Service Unavailable</body></html>"), ClassTransient, ErrMalformedResponse, false},
		{"empty body with 200", answer(200, "application/json", ""), ClassTransient, ErrMalformedResponse, false},
		{"no Content-Type, empty body", answer(200, "", ""), ClassTransient, ErrMalformedResponse, false},
		{"success labelled text/html", answer(200, "text/html", `{"message":"","retcode":"0"}`), ClassSuccess, nil, false},
		{"session retcode labelled text/plain", answer(200, "text/plain", `{"message":"","retcode":"100-006"}`), ClassSession, nil, false},
		{"binary body labelled octet-stream", answer(200, "application/octet-stream", "\x00\x01\xff"), ClassTransient, ErrMalformedResponse, false},
		{"huge body", endless(done), ClassTransient, ErrMalformedResponse, true},
		{"gzip bomb", gzipBomb(), ClassTransient, ErrMalformedResponse, true},
		{"truncated body", truncated(), ClassTransient, nil, false},
		{"closed after headers", rawAnswer(done, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n", 0), ClassTransient, nil, false},
		{"body trickled", trickleBody(done), ClassTransient, context.DeadlineExceeded, false},
		{"headers never finish", rawAnswer(done, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ", 50*time.Millisecond), ClassTransient, context.DeadlineExceeded, false},
		{"headers without end", headerFlood(done), ClassTransient, nil, true},
		{"1xx answers without end", informationalFlood(done), ClassTransient, nil, true},
		{"nothing at all", func(w http.ResponseWriter, r *http.Request) { waitGone(r, done) }, ClassTransient, context.DeadlineExceeded, false},
	}
}

// TestMalformedAnswers runs each broken answer against Disconnect and
// PollEvent over HTTPS, and checks its class and that the call returned
// within its timeout plus a margin.
func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	for _, tc := range malformedCases(done) {
		// A case that a limit must end gets timeouts it cannot reach even
		// on a loaded machine: its error then proves the limit ended it.
		reqTimeout, pollTimeout := malformedRequestTimeout, malformedPollTimeout
		if tc.early {
			reqTimeout, pollTimeout = 20*time.Second, 20*time.Second
		}
		c := malformedServer(t, tc.handler, reqTimeout, pollTimeout)
		t.Run(tc.name+"/disconnect", func(t *testing.T) {
			t.Parallel()
			checkBounded(t, tc, reqTimeout, func(ctx context.Context) error {
				return c.Disconnect(ctx, testAgent, testNumber, testGUID)
			})
		})
		t.Run(tc.name+"/poll", func(t *testing.T) {
			t.Parallel()
			checkBounded(t, tc, pollTimeout, func(ctx context.Context) error {
				_, err := c.PollEvent(ctx, testAgent, testGUID)
				return err
			})
		})
	}
	t.Cleanup(func() { close(done) }) // before the servers close: stops endless handlers
}

// checkBounded runs call and checks its class, its cause and its duration.
func checkBounded(t *testing.T, tc malformed, timeout time.Duration, call func(context.Context) error) {
	t.Helper()
	start := time.Now()
	err := call(context.Background())
	took := time.Since(start)
	if took > timeout+malformedMargin {
		t.Errorf("returned after %v, want at most %v + %v", took, timeout, malformedMargin)
	}
	wantClass(t, err, tc.want)
	if tc.early && errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: the timeout, not a limit, ended the call", err)
	}
	if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
		t.Errorf("error %v does not wrap %v", err, tc.wantErr)
	}
	if err != nil && RetCodeOf(err) == "" && strings.Contains(err.Error(), testGUID) {
		t.Errorf("error %q holds the GUID", err)
	}
}

// malformedServer starts an HTTPS gateway answering every request with h,
// and returns a client of it with the given timeouts.
func malformedServer(t *testing.T, h http.HandlerFunc, reqTimeout, pollTimeout time.Duration) *Client {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return newClient(t, srv.URL, func(c *Config) {
		c.RootCAs = pool
		c.RequestTimeout = reqTimeout
		c.PollTimeout = pollTimeout
		c.MaxBodyBytes = 64 << 10
	})
}

// bomb is 16 MiB of JSON gzipped to about 16 KiB, made once (slow under
// the race detector).
var bomb = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	io.WriteString(zw, `{"retcode":"0","message":"`)
	zw.Write(make([]byte, 16<<20))
	zw.Close()
	return buf.Bytes()
})

// TestMalformedAnswers_BoundedMemory checks that a body or headers without
// end cost the client memory in the order of MaxBodyBytes (default 1 MiB)
// and the 64 KiB header limit, however much the server sends. It is not
// parallel: it measures the allocations of the whole process.
func TestMalformedAnswers_BoundedMemory(t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	const budget = 8 << 20 // allocated bytes per call, TLS and server side included
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"huge body", endless(done)},
		{"gzip bomb", gzipBomb()},
		{"headers without end", headerFlood(done)},
		{"1xx answers without end", informationalFlood(done)},
	} {
		srv := httptest.NewUnstartedServer(tc.h)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c := newClient(t, srv.URL, func(c *Config) { c.RootCAs = pool; c.RequestTimeout = 5 * time.Second })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := c.Disconnect(context.Background(), testAgent, testNumber, testGUID)
		runtime.ReadMemStats(&after)
		wantClass(t, err, ClassTransient)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: ended by the timeout: %v", tc.name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > budget {
			t.Errorf("%s: %d bytes allocated, want at most %d", tc.name, n, budget)
		} else {
			t.Logf("%s: %d KiB allocated: %v", tc.name, n>>10, err)
		}
	}
}
