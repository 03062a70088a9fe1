package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ admin.Logouter = (*gateway.Client)(nil)
	_ error          = (*admin.ReplayRefusedError)(nil)
)

// env is one test's NATS server, provisioned, and a client over it.
type env struct {
	t   *testing.T
	ctx context.Context
	js  jetstream.JetStream
	c   *admin.Client
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, js := testenv.Provisioned(t, topology.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, js: js, now: time.Now().UTC()}
	var err error
	if e.c, err = admin.New(js, admin.WithClock(func() time.Time { return e.now })); err != nil {
		t.Fatal(err)
	}
	return e
}

// deadLetter stores a dead letter of cmd (and, unless rec.State is empty,
// its ledger record) and returns its sequence.
func (e *env) deadLetter(cmd events.DisconnectCommand, status events.Status, reason string, rec ledger.Record) uint64 {
	e.t.Helper()
	if rec.State != "" {
		kv, err := e.js.KeyValue(e.ctx, events.BucketLedger)
		if err != nil {
			e.t.Fatal(err)
		}
		b, _ := json.Marshal(rec)
		if _, err := kv.Put(e.ctx, cmd.CommandID, b); err != nil {
			e.t.Fatal(err)
		}
	}
	m := nats.NewMsg(events.SubjectDeadLetter)
	m.Data, _ = json.Marshal(cmd)
	m.Header.Set(events.HeaderCommandID, cmd.CommandID)
	m.Header.Set(events.HeaderStatus, string(status))
	m.Header.Set(events.HeaderReason, reason)
	ack, err := e.js.PublishMsg(e.ctx, m)
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

func (e *env) command(id string, agent int) events.DisconnectCommand {
	return events.DisconnectCommand{CommandID: id, AgentID: agent, Number: "13800005011", IssuedAt: e.now, TTL: time.Minute}
}

func (e *env) find(ref string) admin.DeadLetter {
	e.t.Helper()
	list, err := e.c.FindDeadLetters(e.ctx, ref)
	if err != nil {
		e.t.Fatalf("FindDeadLetters(%s): %v", ref, err)
	}
	return list[len(list)-1]
}

func refusal(t *testing.T, err error) *admin.ReplayRefusedError {
	t.Helper()
	var r *admin.ReplayRefusedError
	if !errors.As(err, &r) || !admin.IsRefused(err) {
		t.Fatalf("err = %v, want a *ReplayRefusedError", err)
	}
	return r
}

func TestNewRefusesNilJetStream(t *testing.T) {
	if _, err := admin.New(nil); !errors.Is(err, admin.ErrNoJetStream) {
		t.Fatalf("New(nil) = %v, want ErrNoJetStream", err)
	}
}

// Dead letters are listed by filter and found by sequence or command_id;
// a miss is ErrNoDeadLetter; the payload shown masks the number and
// never shows the guid.
func TestDeadLettersFiltersAndLookups(t *testing.T) {
	e := newEnv(t)
	e.deadLetter(e.command("a-1", 501), events.StatusFailed, "x", ledger.Record{})
	rej := e.command("r-1", 502)
	e.deadLetter(rej, events.StatusRejected, "bad", ledger.Record{})
	e.deadLetter(e.command("a-1", 501), events.StatusFailed, "again", ledger.Record{})

	all, err := e.c.DeadLetters(e.ctx, admin.DeadLetterFilter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("all dead letters: %d %v", len(all), err)
	}
	failed, _ := e.c.DeadLetters(e.ctx, admin.DeadLetterFilter{Statuses: map[events.Status]bool{events.StatusFailed: true}})
	agent, _ := e.c.DeadLetters(e.ctx, admin.DeadLetterFilter{Agent: 502})
	newest, _ := e.c.DeadLetters(e.ctx, admin.DeadLetterFilter{Limit: 1})
	if len(failed) != 2 || len(agent) != 1 || agent[0].CommandID != "r-1" || len(newest) != 1 || newest[0].Reason != "again" {
		t.Fatalf("filters: failed %d, agent %+v, newest %+v", len(failed), agent, newest)
	}
	if list, err := e.c.FindDeadLetters(e.ctx, "a-1"); err != nil || len(list) != 2 {
		t.Fatalf("by command_id: %d %v", len(list), err)
	}
	if d, err := e.c.DeadLetter(e.ctx, 2); err != nil || d.CommandID != "r-1" {
		t.Fatalf("by sequence: %+v %v", d, err)
	}
	for _, ref := range []string{"99", "nope"} {
		if _, err := e.c.FindDeadLetters(e.ctx, ref); !errors.Is(err, admin.ErrNoDeadLetter) {
			t.Fatalf("FindDeadLetters(%s) = %v, want ErrNoDeadLetter", ref, err)
		}
	}
	if _, err := e.c.FindDeadLetters(e.ctx, "0"); err == nil || admin.CheckRef("bad ref") == nil {
		t.Fatal("a malformed reference was accepted")
	}
	payload, note := all[0].SafePayload(admin.Masker{})
	if note != "" || strings.Contains(string(payload), "13800005011") {
		t.Fatalf("payload %s (%s) shows the number", payload, note)
	}
	if got := (admin.Masker{}).Text("call 13800005011 failed", "13800005011"); strings.Contains(got, "13800005011") {
		t.Fatalf("Masker.Text = %q", got)
	}
}

// NewestDeadLetters keeps each command's newest dead letter, in stream
// order.
func TestNewestDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.deadLetter(e.command("a-1", 501), events.StatusFailed, "x", ledger.Record{})
	e.deadLetter(e.command("r-1", 502), events.StatusRejected, "bad", ledger.Record{})
	e.deadLetter(e.command("a-1", 501), events.StatusFailed, "again", ledger.Record{})
	list, err := e.c.NewestDeadLetters(e.ctx, admin.DeadLetterFilter{})
	if err != nil || len(list) != 2 || list[0].CommandID != "r-1" || list[1].CommandID != "a-1" || list[1].Reason != "again" {
		t.Fatalf("NewestDeadLetters = %+v, %v; want r-1, then a-1's second copy", list, err)
	}
	if list, err := e.c.NewestDeadLetters(e.ctx, admin.DeadLetterFilter{Agent: 999}); err != nil || len(list) != 0 {
		t.Fatalf("NewestDeadLetters of no match = %+v, %v", list, err)
	}
}

// Replay refusals are typed, with stable reasons, and change nothing.
func TestReplayRefusals(t *testing.T) {
	e := newEnv(t)
	kv, _ := e.js.KeyValue(e.ctx, events.BucketLedger)
	e.deadLetter(e.command("rej-1", 501), events.StatusRejected, "bad", ledger.Record{})
	e.deadLetter(e.command("started-1", 501), events.StatusFailed, "x", ledger.Record{State: ledger.StateStarted, Owner: "w1"})
	e.deadLetter(e.command("acc-1", 501), events.StatusFailed, "x", ledger.Record{State: ledger.StateDone,
		Result: &events.Result{CommandID: "acc-1", Status: events.StatusAccepted, CompletedAt: e.now}})
	unknown := &events.Result{CommandID: "unk-1", Status: events.StatusFailed, Reason: events.ReasonOutcomeUnknown + ": timeout",
		IssuedAt: e.now, ExpiresAt: e.now.Add(time.Minute), CallID: "1764691200-7"}
	e.deadLetter(e.command("unk-1", 501), events.StatusFailed, "x", ledger.Record{State: ledger.StateDone, Result: unknown})
	old := e.command("old-1", 501)
	old.IssuedAt = e.now.Add(-time.Hour)
	e.deadLetter(old, events.StatusExpired, "expired", ledger.Record{})

	for id, want := range map[string]string{"rej-1": admin.RefusedRejected, "started-1": admin.RefusedExecuting,
		"acc-1": admin.RefusedAlreadyExecuted, "unk-1": admin.RefusedOutcomeUnknown, "old-1": admin.RefusedExpired} {
		_, err := e.c.Replay(e.ctx, e.find(id), admin.ReplayOptions{})
		if r := refusal(t, err); r.Reason != want {
			t.Errorf("replay %s refused with %q (%v), want %q", id, r.Reason, err, want)
		}
	}
	if _, err := kv.Get(e.ctx, "unk-1"); err != nil {
		t.Fatalf("a refused replay touched the ledger: %v", err)
	}
	// Force replays the unknown outcome with a new deadline, clears the
	// record, and keeps the command_id.
	res, err := e.c.Replay(e.ctx, e.find("unk-1"), admin.ReplayOptions{Force: true, TTL: 10 * time.Second})
	if err != nil || !strings.HasPrefix(res.MsgID, "replay-unk-1-") || !res.Deadline.Equal(e.now.Add(10*time.Second)) {
		t.Fatalf("forced replay = %+v, %v", res, err)
	}
	if _, err := kv.Get(e.ctx, "unk-1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("ledger record after a forced replay: %v", err)
	}
}

// A replay is scoped to the command's call and refused when the live call
// state shows that call ended.
func TestReplayCallScoped(t *testing.T) {
	e := newEnv(t)
	calls, err := e.js.KeyValue(e.ctx, events.BucketCalls)
	if err != nil {
		t.Fatal(err)
	}
	st := events.CallState{AgentID: 501, Polling: true, ObservedAt: e.now, Calls: []events.Call{
		{CallID: "call-up", Since: e.now.Add(-time.Minute), Parties: []string{"13800005011"}}}}
	b, _ := json.Marshal(st)
	if _, err := calls.Put(e.ctx, events.CallStateKey(501), b); err != nil {
		t.Fatal(err)
	}
	ended := e.command("ended-1", 501)
	ended.CallID = "call-gone"
	e.deadLetter(ended, events.StatusFailed, "x", ledger.Record{})
	_, err = e.c.Replay(e.ctx, e.find("ended-1"), admin.ReplayOptions{})
	var m *events.CallMismatch
	if r := refusal(t, err); r.Reason != admin.RefusedCallEnded || !errors.As(err, &m) {
		t.Fatalf("replay of an ended call: %q %v", r.Reason, err)
	}

	prev := &events.Result{CommandID: "up-1", Status: events.StatusFailed, Reason: "x", IssuedAt: e.now, ExpiresAt: e.now.Add(time.Minute)}
	e.deadLetter(e.command("up-1", 501), events.StatusFailed, "x", ledger.Record{State: ledger.StateDone, Result: prev})
	res, err := e.c.Replay(e.ctx, e.find("up-1"), admin.ReplayOptions{})
	if err != nil || !strings.Contains(strings.Join(res.Notes, "\n"), "scoped to call call-up") {
		t.Fatalf("replay of a command whose call is up = %+v, %v", res, err)
	}
	got, err := e.c.CallState(e.ctx, 501)
	if err != nil || got == nil || got.LastCall().CallID != "call-up" {
		t.Fatalf("CallState = %+v, %v", got, err)
	}
}

// CommandStatus joins the ledger and the result events; an unknown
// command is ErrNoCommand.
func TestCommandStatus(t *testing.T) {
	e := newEnv(t)
	if _, err := e.c.CommandStatus(e.ctx, "nobody", time.Time{}); !errors.Is(err, admin.ErrNoCommand) {
		t.Fatalf("status of an unknown command = %v, want ErrNoCommand", err)
	}
	res := events.Result{CommandID: "s-1", AgentID: 501, Number: "13800005011", Status: events.StatusFailed, Reason: "x",
		IssuedAt: e.now, CompletedAt: e.now}
	m := nats.NewMsg(events.ResultSubject(events.StatusFailed))
	m.Data, _ = json.Marshal(res)
	m.Header.Set(events.HeaderCommandID, "s-1")
	if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	st, err := e.c.CommandStatus(e.ctx, "s-1", time.Time{})
	if err != nil || st.Ledger != nil || st.ResultEvent == nil || st.Result().Status != events.StatusFailed {
		t.Fatalf("status = %+v, %v", st, err)
	}
	st.Mask(admin.Masker{})
	if st.Result().Number == res.Number {
		t.Fatal("Mask left the number")
	}
}

// Sessions register and are removed; Agents lists them; SignOut without
// a session, or without a gateway, says so.
func TestSessionsAndAgents(t *testing.T) {
	e := newEnv(t)
	if err := e.c.RegisterSession(e.ctx, 501, "guid.node1", 1); err != nil {
		t.Fatal(err)
	}
	if s, err := e.c.Session(e.ctx, 501); err != nil || s == nil || s.Node != "node1" || !s.Usable() {
		t.Fatalf("Session = %+v, %v", s, err)
	}
	agents, err := e.c.Agents(e.ctx)
	if err != nil || len(agents) != 1 || agents[0].AgentID != 501 || agents[0].Session != string(events.SessionActive) {
		t.Fatalf("Agents = %+v, %v", agents, err)
	}
	if loggedOut, err := e.c.SignOut(e.ctx, 501, nil); err != nil || loggedOut {
		t.Fatalf("SignOut without a gateway = %v, %v", loggedOut, err)
	}
	var nse *admin.NotSignedInError
	if _, err := e.c.SignOut(e.ctx, 501, nil); !errors.Is(err, admin.ErrNotSignedIn) || !errors.As(err, &nse) || nse.Removed {
		t.Fatalf("SignOut of a removed session = %v, want ErrNotSignedIn", err)
	}
	if agents, err := e.c.Agents(e.ctx); err != nil || len(agents) != 0 {
		t.Fatalf("Agents after SignOut = %+v, %v", agents, err)
	}
}

// Submit follows the results before publishing; a result in the ledger
// counts too (a command_id used before).
func TestSubmit(t *testing.T) {
	e := newEnv(t)
	cmd := e.command("sub-1", 501)
	res := &events.Result{CommandID: "sub-1", AgentID: 501, Status: events.StatusAccepted, CompletedAt: e.now}
	kv, _ := e.js.KeyValue(e.ctx, events.BucketLedger)
	if _, err := kv.Put(e.ctx, "sub-1", ledger.Done(res, 1)); err != nil {
		t.Fatal(err)
	}
	sub, err := e.c.Submit(e.ctx, cmd, admin.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got, stored, err := sub.Result(e.ctx)
	if err != nil || !stored || got.Status != events.StatusAccepted {
		t.Fatalf("Result = %+v stored=%v, %v", got, stored, err)
	}
	// The command itself was published under its command_id.
	st, err := e.js.Stream(e.ctx, events.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(e.ctx, events.SubjectDisconnect)
	if err != nil || raw.Header.Get(events.HeaderMsgID) != "sub-1" {
		t.Fatalf("published command: %v %v", raw, err)
	}
}
