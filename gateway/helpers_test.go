package gateway

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Values used by most tests. testNumber is long enough to be scrubbed from
// the gateway's messages.
const (
	testAgent  = 101
	testNumber = "5550100"
	testGUID   = "3f2a9c1e-7b1d-4c55-9e0a-2a6d1b9f0c11.AgentGateway0"
)

// bundle is one test's gateway: an httptest server whose handlers are
// mounted on mux below /agentgateway/resource, and a client of it.
type bundle struct {
	client *Client
	mux    *http.ServeMux
	srv    *httptest.Server
	hits   atomic.Int64 // requests that reached the server
}

// setup starts a plain-HTTP test gateway and a client with the defaults,
// changed by opts. Handlers register on b.mux with paths relative to the
// resource root, e.g. "POST /voicecall/101/disconnect/{number}".
func setup(t *testing.T, opts ...func(*Config)) *bundle {
	t.Helper()
	b := &bundle{mux: http.NewServeMux()}
	b.srv = httptest.NewUnstartedServer(b.handler())
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	b.client = newClient(t, b.srv.URL, opts...)
	return b
}

// handler counts every request, then serves mux below the resource root.
func (b *bundle) handler() http.Handler {
	api := http.NewServeMux()
	api.Handle(resourcePath, http.StripPrefix(strings.TrimSuffix(resourcePath, "/"), b.mux))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		api.ServeHTTP(w, r)
	})
}

// newClient returns a client of baseURL, closed at the end of the test.
func newClient(t *testing.T, baseURL string, opts ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: baseURL}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testMethod reports a request whose method is not want.
func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if r.Method != want {
		t.Errorf("method %s, want %s", r.Method, want)
	}
}

// testHeader reports a request header whose value is not exactly want.
func testHeader(t *testing.T, r *http.Request, name, want string) {
	t.Helper()
	if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("header %s = %q, want [%q]", name, got, want)
	}
}

// respond writes body with status and, when set, extra headers (name, value
// pairs).
func respond(w http.ResponseWriter, status int, body string, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// ok is the gateway's success body.
const ok = `{"message":"success","retcode":"0","result":{}}`

// retcode returns a gateway body with the given retcode and message.
func retcode(rc, msg string) string {
	return fmt.Sprintf(`{"message":%q,"retcode":%q,"result":{}}`, msg, rc)
}

// hijackClose closes the connection without an answer (a reset).
func hijackClose(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// asError returns err as an *Error or fails the test.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *gateway.Error", err, err)
	}
	return e
}

// wantClass fails the test when err is not of class want.
func wantClass(t *testing.T, err error, want Class) {
	t.Helper()
	if got := Classify(err); got != want {
		t.Fatalf("Classify(%v) = %s, want %s", err, got, want)
	}
}
