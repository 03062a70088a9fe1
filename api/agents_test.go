package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
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

// A dead letter past its deadline is refused without force; the body's
// force and ttl_ms follow the rules of dlq replay --force --ttl; forced,
// it is republished and a worker executes it.
func TestReplayForce(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.system(101)
	var agent struct {
		Call *struct {
			CallID string `json:"call_id"`
		} `json:"call"`
	}
	testenv.WaitFor(t, 10*time.Second, "agent 101's call state", func() bool {
		e.do(req{method: "GET", path: "/v1/agents/101", token: tokAll}).decode(t, &agent)
		return agent.Call != nil
	})
	issued := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	payload := `{"command_id": "exp-1", "agent_id": 101, "number": "5550101", "call_id": "` + agent.Call.CallID +
		`", "issued_at": "` + issued + `", "ttl_ms": 1000}`
	(&jetstreamMsg{subject: events.SubjectDeadLetter, data: []byte(payload), header: map[string]string{
		events.HeaderCommandID: "exp-1", events.HeaderStatus: string(events.StatusExpired), events.HeaderReason: "expired"}}).publish(t, e.js)
	var list api.DeadLetterList
	e.do(req{method: "GET", path: "/v1/deadletters?status=expired", token: tokAll}).decode(t, &list)
	if len(list.DeadLetters) != 1 {
		t.Fatalf("dead letters %+v", list)
	}
	path := "/v1/deadletters/" + itoa(list.DeadLetters[0].Seq) + "/replay"
	if r := e.do(req{method: "POST", path: path, token: tokAll}); r.StatusCode != 409 || r.problem(t).Reason != "expired" {
		t.Fatalf("without force: %d %s", r.StatusCode, r.body)
	}
	for body, field := range map[string]string{`{"force": true}`: "ttl_ms", `{"ttl_ms": 1000}`: "ttl_ms", `{"force": "yes"}`: "payload"} {
		r := e.do(req{method: "POST", path: path, token: tokAll, body: body, invalid: body != `{"ttl_ms": 1000}` && body != `{"force": true}`})
		if p := r.problem(t); r.StatusCode != 422 || p.Field != field {
			t.Fatalf("%s: %d %s", body, r.StatusCode, r.body)
		}
	}
	r := e.do(req{method: "POST", path: path, token: tokAll, body: `{"force": true, "ttl_ms": 30000}`})
	var out api.Replayed
	if r.decode(t, &out); r.StatusCode != 200 || out.CommandID != "exp-1" || out.MsgID == "" || len(out.Notes) == 0 {
		t.Fatalf("forced: %d %s", r.StatusCode, r.body)
	}
	testenv.WaitFor(t, 15*time.Second, "the replayed command's result", func() bool {
		var c api.Command
		res := e.do(req{method: "GET", path: "/v1/commands/exp-1", token: tokRead})
		if res.StatusCode != 200 {
			return false
		}
		res.decode(t, &c)
		return c.Result != nil && c.Result.Status == events.StatusAccepted
	})
}
