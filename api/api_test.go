package api_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
)

const cmdBody = `{"agent_id": 101, "number": "5550101"}`

// POST without Prefer: 202, Location, the command_id from the
// Idempotency-Key, requested_by from the token.
func TestDisconnectAccepted(t *testing.T) {
	e := newEnv(t, api.Config{})
	r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: `{"agent_id": 101, "number": "5550101", "requested_by": "someone-else"}`,
		header: map[string]string{"Idempotency-Key": `"key-1"`}})
	if r.StatusCode != http.StatusAccepted || r.Header.Get("Location") != "/v1/commands/key-1" || r.Header.Get("Preference-Applied") != "" {
		t.Fatalf("got %d Location %q: %s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	var acc api.Accepted
	r.decode(t, &acc)
	if acc.CommandID != "key-1" || acc.Href != "/v1/commands/key-1" {
		t.Fatalf("body %+v", acc)
	}
	cmd := lastCommand(t, e)
	if cmd.CommandID != "key-1" || cmd.RequestedBy != "crm" || cmd.AgentID != 101 {
		t.Fatalf("published %+v, want command_id key-1 requested_by crm", cmd)
	}
	// Its Location answers before a worker takes it (there is none here),
	// to the tokens whose range holds its agent.
	var c api.Command
	loc := e.do(req{method: "GET", path: "/v1/commands/key-1", token: tokRead})
	if loc.decode(t, &c); loc.StatusCode != http.StatusOK || c.LedgerState != "published" || c.Result != nil {
		t.Fatalf("Location: %d %s", loc.StatusCode, loc.body)
	}
	if r := e.do(req{method: "GET", path: "/v1/commands/key-1", token: tokRange}); r.StatusCode != http.StatusOK {
		t.Fatalf("in range: %d", r.StatusCode)
	}
	e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: `{"command_id": "far-1", "agent_id": 103, "number": "5550103"}`})
	if r := e.do(req{method: "GET", path: "/v1/commands/far-1", token: tokRange}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("out of range: %d %s", r.StatusCode, r.body)
	}
	// Without a key and without a command_id: a new UUID.
	r = e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody})
	r.decode(t, &acc)
	if r.StatusCode != http.StatusAccepted || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(acc.CommandID) {
		t.Fatalf("got %d %s", r.StatusCode, r.body)
	}
	// The body's command_id wins over the key.
	r = e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: `{"command_id": "own-1", "agent_id": 101, "number": "5550101"}`,
		header: map[string]string{"Idempotency-Key": "key-2"}})
	if r.decode(t, &acc); acc.CommandID != "own-1" {
		t.Fatalf("got %s", r.body)
	}
}

// The same key with the same body returns the first response and
// publishes once; with another body it is 422.
func TestIdempotency(t *testing.T) {
	e := newEnv(t, api.Config{})
	send := func(body string) resp {
		return e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: body, header: map[string]string{"Idempotency-Key": "idem-1"}})
	}
	first := send(cmdBody)
	again := send(cmdBody)
	if first.StatusCode != http.StatusAccepted || again.StatusCode != first.StatusCode || string(again.body) != string(first.body) ||
		again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("first %d %s, again %d %s", first.StatusCode, first.body, again.StatusCode, again.body)
	}
	if n := commandCount(t, e); n != 1 {
		t.Fatalf("%d commands published, want 1", n)
	}
	other := send(`{"agent_id": 102, "number": "5550102"}`)
	if p := other.problem(t); other.StatusCode != http.StatusUnprocessableEntity || p.Type != "urn:callcontrol:problem:idempotency_key_reused" {
		t.Fatalf("other body: %d %s", other.StatusCode, other.body)
	}
	// Keys are command_ids: another token's request with the key is
	// another request, even with the same body.
	r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokRange, body: cmdBody,
		header: map[string]string{"Idempotency-Key": "idem-1"}})
	if r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("other token: %d %s", r.StatusCode, r.body)
	}
	// Concurrent first requests: one publishes, every one gets its response.
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() {
			codes[i] = e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody,
				header: map[string]string{"Idempotency-Key": "idem-2"}}).StatusCode
		})
	}
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusAccepted && c != http.StatusConflict {
			t.Fatalf("concurrent: %v", codes)
		}
	}
	if n := commandCount(t, e); n != 2 {
		t.Fatalf("%d commands published, want 2", n)
	}
}

// Prefer: wait with a real worker and poller: 200, the result and the
// confirmation, Preference-Applied; the stored response is replayed.
func TestPreferWait(t *testing.T) {
	e := newEnv(t, api.Config{MaxWait: 15 * time.Second})
	e.system(101)
	r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody,
		header: map[string]string{"Prefer": "respond-async, wait=20", "Idempotency-Key": "wait-1"}})
	if r.StatusCode != http.StatusOK || r.Header.Get("Preference-Applied") != "wait=15" { // cut to MaxWait
		t.Fatalf("got %d (Preference-Applied %q): %s", r.StatusCode, r.Header.Get("Preference-Applied"), r.body)
	}
	var acc api.Accepted
	r.decode(t, &acc)
	if acc.Result == nil || acc.Result.Status != events.StatusAccepted || acc.Result.Number != events.MaskNumber("5550101") ||
		acc.Result.RequestedBy != "crm" {
		t.Fatalf("result %s", r.body)
	}
	if acc.Confirmation == nil || acc.Confirmation.Status != events.ConfirmationConfirmed {
		t.Fatalf("confirmation %s", r.body)
	}
	again := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody,
		header: map[string]string{"Prefer": "wait=20", "Idempotency-Key": "wait-1"}})
	if again.StatusCode != http.StatusOK || string(again.body) != string(r.body) {
		t.Fatalf("again: %d %s", again.StatusCode, again.body)
	}
	// GET the command.
	c := e.do(req{method: "GET", path: "/v1/commands/wait-1", token: tokRead})
	var cmd api.Command
	c.decode(t, &cmd)
	if c.StatusCode != http.StatusOK || cmd.LedgerState != "done" || cmd.Result == nil || cmd.Attempts != 1 || cmd.Confirmation == nil {
		t.Fatalf("status: %d %s", c.StatusCode, c.body)
	}
	// An agent outside the range cannot see it; one inside can.
	if c := e.do(req{method: "GET", path: "/v1/commands/wait-1", token: tokRange}); c.StatusCode != http.StatusOK {
		t.Fatalf("in range: %d", c.StatusCode)
	}
	if strings.Contains(e.logs.String(), "5550101") || strings.Contains(e.logs.String(), tokAll) {
		t.Fatalf("logs hold a number or a token:\n%s", e.logs)
	}
}

// Prefer: wait without a worker: 202 without Preference-Applied.
func TestPreferWaitTimesOut(t *testing.T) {
	e := newEnv(t, api.Config{})
	start := time.Now()
	r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody, header: map[string]string{"Prefer": "wait=1"}})
	if r.StatusCode != http.StatusAccepted || r.Header.Get("Preference-Applied") != "" || time.Since(start) < time.Second {
		t.Fatalf("got %d %v after %v", r.StatusCode, r.Header, time.Since(start))
	}
}

// Every error is a problem with the status the document gives.
func TestErrors(t *testing.T) {
	e := newEnv(t, api.Config{})
	big := `{"agent_id": 101, "number": "5550101", "correlation_id": "` + strings.Repeat("x", events.MaxCommandSize) + `"}`
	cases := []struct {
		name string
		rq   req
		code int
		want string // problem type code
	}{
		{"no token", req{method: "GET", path: "/v1/commands/nope", invalid: true}, 401, api.CodeUnauthorized},
		{"no token, existing-looking path", req{method: "POST", path: "/v1/disconnects", body: cmdBody, invalid: true}, 401, api.CodeUnauthorized},
		{"bad token", req{method: "GET", path: "/v1/commands/nope", token: "wrong"}, 401, api.CodeUnauthorized},
		{"no scope", req{method: "POST", path: "/v1/disconnects", token: tokRead, body: cmdBody}, 403, api.CodeForbidden},
		{"no scopes at all", req{method: "GET", path: "/v1/agents", token: tokNoScopes}, 403, api.CodeForbidden},
		{"agent out of range", req{method: "POST", path: "/v1/disconnects", token: tokRange, body: `{"agent_id": 103, "number": "5550103"}`}, 403, api.CodeForbidden},
		{"agent out of range GET", req{method: "GET", path: "/v1/agents/103", token: tokRange}, 403, api.CodeForbidden},
		{"not json", req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody, header: map[string]string{"Content-Type": "text/plain"}, invalid: true}, 415, api.CodeUnsupportedType},
		{"too large", req{method: "POST", path: "/v1/disconnects", token: tokAll, body: big, invalid: true}, 413, api.CodeTooLarge},
		{"bad key", req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody, header: map[string]string{"Idempotency-Key": "a b"}, invalid: true}, 400, api.CodeBadHeader},
		{"unknown command", req{method: "GET", path: "/v1/commands/nope", token: tokRead}, 404, api.CodeNotFound},
		{"unknown agent", req{method: "GET", path: "/v1/agents/4242", token: tokAll}, 404, api.CodeNotFound},
		{"unknown dead letter", req{method: "GET", path: "/v1/deadletters/99", token: tokAll}, 404, api.CodeNotFound},
		{"unknown path", req{method: "GET", path: "/v1/nothing", token: tokAll, invalid: true}, 404, api.CodeNotFound},
		{"method", req{method: "DELETE", path: "/v1/disconnects", token: tokAll, invalid: true}, 405, api.CodeMethod},
		{"bad query", req{method: "GET", path: "/v1/deadletters?status=lost", token: tokAll}, 400, api.CodeValidation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchange(t, e.url, e.router, e.doc, c.rq)
			p := r.problem(t)
			if r.StatusCode != c.code || p.Status != c.code || p.Type != "urn:callcontrol:problem:"+c.want {
				t.Fatalf("got %d %s, want %d %s", r.StatusCode, r.body, c.code, c.want)
			}
			if c.code == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if c.code == 405 && r.Header.Get("Allow") != "POST" {
				t.Fatalf("Allow %q", r.Header.Get("Allow"))
			}
		})
	}
	// 401 gives no hint: the same body for a path that exists and one that does not.
	a := e.do(req{method: "GET", path: "/v1/commands/nope", invalid: true})
	b := e.do(req{method: "GET", path: "/v1/nothing", invalid: true})
	if string(a.body) != string(b.body) {
		t.Fatalf("401 bodies differ: %s / %s", a.body, b.body)
	}
}

// A command breaking a rule: 422 naming the field and the rule, as the
// NATS path would reject it.
func TestValidation(t *testing.T) {
	e := newEnv(t, api.Config{})
	for body, field := range map[string]string{
		`{"agent_id": 42, "number": "5550101"}`:               "agent_id",
		`{"agent_id": 101, "number": "12/../34"}`:             "number",
		`{"agent_id": 101, "number": "5550101", "ttl_ms": 0}`: "ttl_ms",
		`[1]`: "payload",
	} {
		r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: body, invalid: true})
		p := r.problem(t)
		if r.StatusCode != 422 || p.Field != field || p.Rule == "" {
			t.Errorf("%s: %d %s, want 422 on %s", body, r.StatusCode, r.body, field)
		}
	}
	// A rule the schema cannot express (a repeated key) is enforced too.
	r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: `{"agent_id": 101, "number": "5550101", "number": "5550102"}`})
	if r.StatusCode != 422 {
		t.Fatalf("repeated key: %d %s", r.StatusCode, r.body)
	}
}

// Over the rate: 429 with Retry-After.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, api.Config{Rate: 0.5, Burst: 2})
	var last resp
	for range 3 {
		last = e.do(req{method: "GET", path: "/v1/agents", token: tokAll})
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") != "2" {
		t.Fatalf("got %d Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
	}
	// Another token has its own limit.
	if r := e.do(req{method: "GET", path: "/v1/agents", token: tokRange}); r.StatusCode != http.StatusOK {
		t.Fatalf("other token: %d", r.StatusCode)
	}
}

// The document is served, and is the embedded one.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, api.Config{})
	r := e.do(req{method: "GET", path: "/v1/openapi.json"})
	if r.StatusCode != 200 || string(r.body) != string(api.OpenAPI) {
		t.Fatalf("got %d", r.StatusCode)
	}
}

// One log line per request with the route pattern and the token's name.
func TestRequestLog(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.do(req{method: "GET", path: "/v1/commands/nope", token: tokRead})
	line := e.logs.String()
	for _, want := range []string{`"method":"GET"`, `"route":"GET /v1/commands/{id}"`, `"status":404`, `"token":"reader"`, `"duration":`} {
		if !strings.Contains(line, want) {
			t.Fatalf("log %s lacks %s", line, want)
		}
	}
	if strings.Contains(line, tokRead) || strings.Contains(line, "nope") {
		t.Fatalf("log holds the token or the path: %s", line)
	}
}

// A retry while the first request with the key is still waiting: 409;
// after it answered, its response.
func TestIdempotencyInFlight(t *testing.T) {
	e := newEnv(t, api.Config{})
	first := make(chan resp, 1)
	send := func(wait string) resp {
		return e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody,
			header: map[string]string{"Idempotency-Key": "slow-1", "Prefer": wait}})
	}
	go func() { first <- send("wait=2") }()
	kv, err := e.js.KeyValue(context.Background(), topology.BucketIdempotency)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the first request's claim", func() bool {
		keys, err := kv.ListKeys(context.Background())
		if err != nil {
			return false
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		return n == 1
	})
	if r := send("wait=0"); r.StatusCode != http.StatusConflict || r.problem(t).Type != "urn:callcontrol:problem:"+api.CodeKeyInFlight {
		t.Fatalf("in flight: %d %s", r.StatusCode, r.body)
	}
	f := <-first
	if f.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %s", f.StatusCode, f.body)
	}
	if r := send("wait=0"); r.StatusCode != f.StatusCode || string(r.body) != string(f.body) {
		t.Fatalf("after: %d %s", r.StatusCode, r.body)
	}
}

// JetStream unreachable: 503 with Retry-After, the cause in the log only.
func TestUnavailable(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.nc.Close()
	r := e.do(req{method: "GET", path: "/v1/agents", token: tokAll})
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || strings.Contains(string(r.body), "closed") {
		t.Fatalf("got %d %s", r.StatusCode, r.body)
	}
	if !strings.Contains(e.logs.String(), `"error":`) {
		t.Fatalf("the cause is not logged: %s", e.logs)
	}
}
