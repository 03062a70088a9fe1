package gatewaysim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type wireEvent struct {
	EventType    string          `json:"eventType"`
	WorkNo       string          `json:"workNo"`
	Content      json.RawMessage `json:"content"`
	EventGenTime int64           `json:"eventGenTime"`
}

type wireReply struct {
	Message string          `json:"message"`
	RetCode string          `json:"retcode"`
	Result  json.RawMessage `json:"result"`
	Event   *wireEvent      `json:"event"`
}

type bundle struct {
	t      *testing.T
	sim    *Sim
	srv    *httptest.Server
	client *http.Client
}

// setup serves a new simulator over real HTTP. PollHold defaults to 100ms.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	if cfg.PollHold == 0 {
		cfg.PollHold = 100 * time.Millisecond
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // runs first: releases held requests
	return &bundle{t: t, sim: sim, srv: srv, client: &http.Client{Timeout: 10 * time.Second}}
}

// do sends a request and decodes the JSON envelope.
func (b *bundle) do(method, path, guid string, body any) (*http.Response, wireReply, error) {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		return nil, wireReply{}, err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	if guid != "" {
		req.Header.Set("guid", guid)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, wireReply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, wireReply{}, err
	}
	var rep wireReply
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		err = json.Unmarshal(data, &rep)
	}
	return resp, rep, err
}

// must is do that fails the test on a transport error.
func (b *bundle) must(method, path, guid string, body any) (*http.Response, wireReply) {
	b.t.Helper()
	resp, rep, err := b.do(method, path, guid, body)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, rep
}

func agentPath(format string, args ...any) string { return Prefix + fmt.Sprintf(format, args...) }

// signIn signs id in over HTTP and returns the GUID without its prefix.
func (b *bundle) signIn(id int) string {
	b.t.Helper()
	resp, rep := b.must(http.MethodPut, agentPath("/onlineagent/%d/forcelogin", id), "", map[string]any{"password": "pw", "phonenum": "70001"})
	if rep.RetCode != "0" {
		b.t.Fatalf("sign-in %d: retcode %s", id, rep.RetCode)
	}
	return strings.TrimPrefix(resp.Header.Get("Set-GUID"), setGUIDPrefix)
}

func (b *bundle) poll(id int, guid string) (*http.Response, wireReply) {
	b.t.Helper()
	return b.must(http.MethodGet, agentPath("/agentevent/%d", id), guid, nil)
}

// nextEvent polls once and requires an event.
func (b *bundle) nextEvent(id int, guid string) wireEvent {
	b.t.Helper()
	_, rep := b.poll(id, guid)
	if rep.RetCode != "0" || rep.Event == nil {
		b.t.Fatalf("poll %d: want an event, got retcode %q event %v", id, rep.RetCode, rep.Event)
	}
	return *rep.Event
}

// drain polls until a poll returns no event.
func (b *bundle) drain(id int, guid string) {
	b.t.Helper()
	for {
		_, rep := b.poll(id, guid)
		if rep.RetCode != "0" {
			b.t.Fatalf("drain %d: retcode %s", id, rep.RetCode)
		}
		if rep.Event == nil {
			return
		}
	}
}

func (b *bundle) disconnect(id int, guid, number string) string {
	b.t.Helper()
	_, rep := b.must(http.MethodPost, agentPath("/voicecall/%d/disconnect/%s", id, number), guid, nil)
	return rep.RetCode
}

// waitFor polls cond until it holds or a 5 s deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: retcode %q, want %q", what, got, want)
	}
}
