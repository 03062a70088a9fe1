package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// lastCommand is the last command published.
func lastCommand(t *testing.T, e *env) events.DisconnectCommand {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, events.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, events.SubjectDisconnect)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := events.DecodeDisconnect(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

func commandCount(t *testing.T, e *env) uint64 {
	t.Helper()
	st, err := e.js.Stream(context.Background(), events.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// The agents list holds the token's range only.
func TestAgents(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.system(101, 103)
	var all, ranged api.AgentList
	e.do(req{method: "GET", path: "/v1/agents", token: tokAll}).decode(t, &all)
	e.do(req{method: "GET", path: "/v1/agents", token: tokRange}).decode(t, &ranged)
	if len(all.Agents) != 2 || len(ranged.Agents) != 1 || ranged.Agents[0].AgentID != 101 {
		t.Fatalf("all %+v, ranged %+v", all, ranged)
	}
	r := e.do(req{method: "GET", path: "/v1/agents/101", token: tokRange})
	var a map[string]any
	r.decode(t, &a)
	if r.StatusCode != http.StatusOK || a["session"] != "active" {
		t.Fatalf("agent 101: %d %s", r.StatusCode, r.body)
	}
}

// A dead letter: listed, shown, and its replay refused with the reason.
func TestDeadLetters(t *testing.T) {
	e := newEnv(t, api.Config{})
	// A rejected command's dead letter, as a worker stores it.
	payload, _ := json.Marshal(map[string]any{"command_id": "dl-1", "agent_id": 101, "number": "5550101", "guid": "secret-guid"})
	m := &jetstreamMsg{subject: events.SubjectDeadLetter, data: payload, header: map[string]string{
		events.HeaderCommandID: "dl-1", events.HeaderStatus: string(events.StatusRejected), events.HeaderReason: "number: bad"}}
	m.publish(t, e.js)
	var list api.DeadLetterList
	r := e.do(req{method: "GET", path: "/v1/deadletters?status=rejected&limit=10", token: tokAll})
	r.decode(t, &list)
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].CommandID != "dl-1" || list.DeadLetters[0].Number != events.MaskNumber("5550101") {
		t.Fatalf("list %s", r.body)
	}
	seq := list.DeadLetters[0].Seq
	path := "/v1/deadletters/" + itoa(seq)
	var d api.DeadLetter
	r = e.do(req{method: "GET", path: path, token: tokRead})
	r.decode(t, &d)
	if r.StatusCode != 200 || d.Payload == nil || json.Valid(d.Payload) == false || containsAny(string(r.body), "secret-guid", "5550101") {
		t.Fatalf("show %s", r.body)
	}
	if r := e.do(req{method: "POST", path: path + "/replay", token: tokRead}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("replay without dlq:write: %d", r.StatusCode)
	}
	r = e.do(req{method: "POST", path: path + "/replay", token: tokAll})
	if p := r.problem(t); r.StatusCode != http.StatusConflict || p.Reason != "rejected" {
		t.Fatalf("replay: %d %s", r.StatusCode, r.body)
	}
	// Outside the range: not even listed.
	r = e.do(req{method: "GET", path: "/v1/deadletters", token: tokRange})
	if r.decode(t, &list); len(list.DeadLetters) != 1 {
		t.Fatalf("in range: %s", r.body)
	}
}

type jetstreamMsg struct {
	subject string
	data    []byte
	header  map[string]string
}

func (m *jetstreamMsg) publish(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	msg := newMsg(m.subject, m.data, m.header)
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}
