package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/nats-io/nats.go/jetstream"
)

// sseEvent is one event read from a stream.
type sseEvent struct{ id, event, data string }

// sseStream is an open GET /v1/events.
type sseStream struct {
	events chan sseEvent
	res    *http.Response
	cancel context.CancelFunc
}

// openEvents opens GET path with token (and Last-Event-ID lastID), with
// the request and the response's status and headers validated against
// the document.
func (e *env) openEvents(path, token, lastID string) *sseStream {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	hr.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		hr.Header.Set("Last-Event-ID", lastID)
	}
	route, params, err := e.router.FindRoute(hr)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Body: http.NoBody,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true}}); err != nil {
		t.Fatalf("events response: %v", err)
	}
	s := &sseStream{events: make(chan sseEvent, 10000), res: res, cancel: cancel}
	t.Cleanup(s.close)
	go s.read()
	return s
}

func (s *sseStream) close() { s.cancel(); s.res.Body.Close() }

func (s *sseStream) read() {
	defer close(s.events)
	sc := bufio.NewScanner(s.res.Body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.event != "" {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// next returns the next n events, failing the test after 10 s.
func (s *sseStream) next(t *testing.T, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("stream ended after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("%d of %d events in 10 s", len(out), n)
		}
	}
	return out
}

// none fails if an event arrives within d.
func (s *sseStream) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-s.events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// publishResult stores a result of command id for agent as a worker does.
func (e *env) publishResult(id string, agent int) {
	e.t.Helper()
	data, _ := json.Marshal(events.Result{CommandID: id, AgentID: agent, Number: "5550" + fmt.Sprint(agent),
		Status: events.StatusAccepted, Attempts: 1, CompletedAt: time.Now()})
	m := newMsg(events.ResultSubject(events.StatusAccepted), data, map[string]string{events.HeaderCommandID: id})
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		e.t.Fatal(err)
	}
}

// publishConfirmation stores a confirmation as a poller does.
func (e *env) publishConfirmation(id string, agent int) {
	e.t.Helper()
	data, _ := json.Marshal(events.Confirmation{CommandID: id, AgentID: agent, Number: "5550" + fmt.Sprint(agent),
		Status: events.ConfirmationConfirmed, IssuedAt: time.Now(), AcceptedAt: time.Now(), ConfirmedAt: time.Now()})
	m := newMsg(events.ConfirmationSubject(events.ConfirmationConfirmed), data, map[string]string{events.HeaderCommandID: id})
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		e.t.Fatal(err)
	}
}

func commandIDs(t *testing.T, evs []sseEvent) []string {
	t.Helper()
	var ids []string
	for _, ev := range evs {
		var v struct {
			CommandID string `json:"command_id"`
			Number    string `json:"number"`
		}
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
			t.Fatal(err)
		}
		if v.Number != "" && !strings.HasPrefix(v.Number, "*") {
			t.Fatalf("unmasked number in %s", ev.data)
		}
		ids = append(ids, ev.event+":"+v.CommandID)
	}
	return ids
}

// A client that disconnects and comes back with its Last-Event-ID gets
// every event after it, from both streams, once.
func TestEventsResume(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.publishResult("before", 101) // before the stream: not sent
	s := e.openEvents("/v1/events", tokAll, "")
	for i := range 3 {
		e.publishResult(fmt.Sprint("c", i), 101)
		e.publishConfirmation(fmt.Sprint("c", i), 101)
	}
	got := s.next(t, 3)
	s.close()
	last := got[2].id
	for i := 3; i < 5; i++ {
		e.publishResult(fmt.Sprint("c", i), 101)
		e.publishConfirmation(fmt.Sprint("c", i), 101)
	}
	again := e.openEvents("/v1/events", tokAll, last)
	rest := again.next(t, 7)
	again.none(t, 300*time.Millisecond)
	// Each stream's events in order, each once (the two streams are
	// merged as they arrive).
	perType := map[string][]string{}
	for _, id := range commandIDs(t, append(got, rest...)) {
		typ, cmd, _ := strings.Cut(id, ":")
		perType[typ] = append(perType[typ], cmd)
	}
	want := "c0 c1 c2 c3 c4"
	if r, c := strings.Join(perType["result"], " "), strings.Join(perType["confirmation"], " "); r != want || c != want {
		t.Fatalf("results %s, confirmations %s, want %s for both", r, c, want)
	}
}

// Scopes and ranges apply to the stream.
func TestEventsScopeAndRange(t *testing.T) {
	e := newEnv(t, api.Config{})
	for _, c := range []struct {
		path, token string
		code        int
	}{
		{"/v1/events?types=agent_event", tokRead, 403},
		{"/v1/events?agent=103", tokRange, 403},
		{"/v1/events?types=calls", tokAll, 400},
		{"/v1/events", tokNoScopes, 403},
	} {
		r := e.do(req{method: "GET", path: c.path, token: c.token})
		if r.StatusCode != c.code {
			t.Errorf("%s: %d %s, want %d", c.path, r.StatusCode, r.body, c.code)
		}
	}
	s := e.openEvents("/v1/events?types=result", tokRange, "")
	e.publishResult("other", 103)
	e.publishResult("mine", 101)
	if ids := commandIDs(t, s.next(t, 1)); ids[0] != "result:mine" {
		t.Fatalf("got %v", ids)
	}
}

// A client that does not read is dropped once its buffer is full; one
// that reads gets every event meanwhile.
func TestEventsSlowClient(t *testing.T) {
	// Small socket buffers on both sides, so that a client that never
	// reads is full after a few events, not after megabytes.
	e := newEnvListener(t, api.Config{EventBuffer: 256, EventWriteTimeout: time.Second}, func(l net.Listener) net.Listener {
		return smallSendBuffers{l}
	})
	fast := e.openEvents("/v1/events?types=result", tokAll, "")
	slow := dialSmallBuffer(t, strings.TrimPrefix(e.url, "http://"))
	fmt.Fprintf(slow, "GET /v1/events?types=result HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", tokRead)
	testenv.WaitFor(t, 5*time.Second, "two streams", func() bool { return consumerCount(t, e) == 2 })
	const n = 3000
	padding := strings.Repeat("x", 100)
	for i := range n {
		e.publishResult(fmt.Sprint("s", i, "-", padding[:i%50+1]), 101)
	}
	if got := fast.next(t, n); len(got) != n {
		t.Fatalf("fast client got %d", len(got))
	}
	testenv.WaitFor(t, 15*time.Second, "the slow client to be dropped", func() bool {
		for line := range strings.Lines(e.logs.String()) {
			if strings.Contains(line, `"token":"reader"`) && strings.Contains(line, `"route":"GET /v1/events"`) && strings.Contains(line, `"error":`) {
				return true
			}
		}
		return false
	})
	fast.none(t, 100*time.Millisecond) // and the fast one is still there, with nothing more
	if fast.res.StatusCode != 200 {
		t.Fatal(fast.res.Status)
	}
}

// dialSmallBuffer connects with a 4 KiB receive buffer, so that a client
// that never reads fills up quickly.
func dialSmallBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func consumerCount(t *testing.T, e *env) int {
	st, err := e.js.Stream(context.Background(), events.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// A desktop-style client follows its own agent's events over the API
// while the poller polls that agent: it receives every event the poller
// republishes for it.
func TestEventsDesktop(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.system(101, 102)
	desk := e.openEvents("/v1/events?types=agent_event&agent=101", tokRange, "")
	start := time.Now()
	r := e.do(req{method: "POST", path: "/v1/disconnects", token: tokAll, body: cmdBody, header: map[string]string{"Prefer": "wait=20"}})
	var acc api.Accepted
	if r.decode(t, &acc); acc.Confirmation == nil {
		t.Fatalf("no confirmation: %s", r.body)
	}
	// Every agent event of 101 stored since the desktop connected.
	var stored []string
	cons, err := e.js.OrderedConsumer(context.Background(), events.StreamEvents, orderedFrom(events.SubjectAgentEvents+".101.>", start.Add(-time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		var a events.AgentEvent
		_ = json.Unmarshal(m.Data(), &a)
		stored = append(stored, a.Type)
	}
	if len(stored) == 0 {
		t.Fatal("the poller stored no event of agent 101")
	}
	got := desk.next(t, len(stored))
	var types []string
	for _, ev := range got {
		var a events.AgentEvent
		_ = json.Unmarshal([]byte(ev.data), &a)
		if a.AgentID != 101 {
			t.Fatalf("event of agent %d", a.AgentID)
		}
		types = append(types, a.Type)
	}
	if strings.Join(types, " ") != strings.Join(stored, " ") || !strings.Contains(strings.Join(types, " "), "AgentEvent_Customer_Release") {
		t.Fatalf("desktop got %v, stored %v", types, stored)
	}
}

func orderedFrom(subject string, since time.Time) jetstream.OrderedConsumerConfig {
	return jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since}
}

// smallSendBuffers gives every accepted connection a 4 KiB send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}
