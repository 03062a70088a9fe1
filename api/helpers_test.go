package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The tokens of every test: all scopes; read only; agents 101-102 only.
const (
	tokAll      = "all-scopes-token"
	tokRead     = "read-only-token"
	tokRange    = "range-101-102-token"
	tokNoScopes = "no-scopes-token"
)

func tokenFile(t testing.TB) *api.Tokens {
	t.Helper()
	f := api.TokenFile{Tokens: []api.TokenEntry{
		{Name: "crm", SHA256: api.HashToken(tokAll), Scopes: api.AllScopes},
		{Name: "reader", SHA256: api.HashToken(tokRead), Scopes: []api.Scope{api.ScopeCommandsRead}},
		{Name: "desk", SHA256: api.HashToken(tokRange), Scopes: api.AllScopes, Agents: &api.AgentRange{From: 101, To: 102}},
		{Name: "none", SHA256: api.HashToken(tokNoScopes)},
	}}
	data, _ := json.Marshal(f)
	tokens, err := api.ParseTokens(data)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// env is an API server on a provisioned NATS server, with the document's
// router to validate every exchange.
type env struct {
	t      *testing.T
	url    string
	js     jetstream.JetStream
	nc     *nats.Conn // the API server's connection
	logs   *testenv.SyncBuffer
	router routers.Router
	doc    *openapi3.T
}

// newEnv starts NATS and the API server (cfg's JetStream, Tokens and
// Logger are set here).
func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	return newEnvListener(t, cfg, nil)
}

// newEnvListener is newEnv whose server accepts on wrap(listener), when
// wrap is not nil.
func newEnvListener(t *testing.T, cfg api.Config, wrap func(net.Listener) net.Listener) *env {
	t.Helper()
	url, _ := testenv.Provisioned(t, topology.Config{})
	nc, js := testenv.Connect(t, url)
	e := &env{t: t, js: js, nc: nc, logs: &testenv.SyncBuffer{}}
	cfg.JetStream, cfg.Tokens, cfg.Logger = js, tokenFile(t), zerolog.New(e.logs)
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	t.Cleanup(hs.Close)
	e.url = hs.URL
	e.doc, e.router = loadDoc(t)
	return e
}

func loadDoc(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, r
}

// req is one request of a test. invalid says the request is meant to
// break the document (no token, a body breaking the schema, a wrong
// content type): the helper checks that the document says so too.
type req struct {
	method, path, token, body string
	header                    map[string]string
	invalid                   bool
}

// resp is a response, read.
type resp struct {
	*http.Response
	body []byte
}

func (r resp) problem(t testing.TB) api.Problem {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("not a problem: %s", r.body)
	}
	return p
}

func (r resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends rq and validates the request and the response against the
// OpenAPI document.
func (e *env) do(rq req) resp {
	e.t.Helper()
	return exchange(e.t, e.url, e.router, e.doc, rq)
}

func exchange(t testing.TB, base string, router routers.Router, doc *openapi3.T, rq req) resp {
	t.Helper()
	hr, err := http.NewRequest(rq.method, base+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	if rq.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if rq.token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, v := range rq.header {
		hr.Header.Set(k, v)
	}
	route, params, routeErr := router.FindRoute(hr)
	var in *openapi3filter.RequestValidationInput
	if routeErr == nil {
		in = &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, RejectWhenRequestBodyNotSpecified: true}}
		err = openapi3filter.ValidateRequest(context.Background(), in)
		hr.Body = io.NopCloser(strings.NewReader(rq.body)) // validation read it
	} else {
		err = routeErr
	}
	if (err != nil) != rq.invalid {
		t.Fatalf("%s %s: the document says the request is invalid=%v (%v), the test says %v", rq.method, rq.path, err != nil, err, rq.invalid)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if routeErr != nil {
		checkProblemSchema(t, doc, res, body)
	} else {
		checkResponse(t, in, res, body)
	}
	return resp{res, body}
}

// bearerPresent is the document's view of authentication: a bearer token
// is there (the document cannot know whether it is valid).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

func checkResponse(t testing.TB, in *openapi3filter.RequestValidationInput, res *http.Response, body []byte) {
	t.Helper()
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}})
	if err != nil {
		t.Fatalf("%s %s: response %d breaks the document: %v\n%s", in.Request.Method, in.Request.URL.Path, res.StatusCode, err, body)
	}
}

// checkProblemSchema validates a response to a path the document does not
// have (404, 405): a problem.
func checkProblemSchema(t testing.TB, doc *openapi3.T, res *http.Response, body []byte) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if err := doc.Components.Schemas["Problem"].Value.VisitJSON(v); err != nil {
		t.Fatalf("not a Problem: %v\n%s", err, body)
	}
}

// system runs a gateway simulator, a worker and a poller on e's NATS, with
// agents signed in, each on a call with 5550<agent>.
func (e *env) system(agents ...int) *testenv.Gateway {
	t := e.t
	t.Helper()
	gw := testenv.StartGateway(t, gatewaysim.Config{PollHold: 200 * time.Millisecond})
	client := func() *gateway.Client {
		c, err := gateway.New(gateway.Config{BaseURL: gw.URL, RootCAs: gw.Roots, MaxConns: 16})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	ac, _ := admin.New(e.js)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range agents {
		if err := ac.SignIn(ctx, client(), a, gateway.SignInRequest{}, 1, false); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Sim.StartCall(a, "5550"+strconv.Itoa(a)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := worker.New(worker.Config{Logger: zerolog.New(e.logs)}, e.js, client())
	if err != nil {
		t.Fatal(err)
	}
	p, err := poller.New(poller.Config{Logger: zerolog.New(e.logs), PollTimeout: gateway.DefaultPollTimeout}, e.js, client())
	if err != nil {
		t.Fatal(err)
	}
	run(t, w.Run)
	run(t, p.Run)
	return gw
}

// run runs fn until the test ends.
func run(t *testing.T, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	})
}
