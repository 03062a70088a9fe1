package main

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/callcontrol/callcontrol/admin"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// replay --all replays each matching command once; a replay repeated
// before a worker ran it is stored once (same Nats-Msg-Id); the ledger
// record is cleared only at the revision that was checked; status shows a
// plainly accepted command with its result event and confirmation.
func TestDLQReplayAllAndRetriedReplay(t *testing.T) {
	e := newDLQEnv(t, "poller")
	stopWorker := e.start("worker")
	ids := map[int]string{403: "dlq-all-403", 404: "dlq-all-404"}
	guids := map[int]string{}
	for agent := range ids { // on their calls before the commands, not registered yet
		guids[agent] = e.onCall(agent, "1380000"+itoa0(agent))
	}
	for agent, id := range ids {
		e.publish(events.DisconnectCommand{CommandID: id, AgentID: agent, Number: "1380000" + itoa0(agent), TTL: 2 * time.Minute})
	}
	for _, id := range ids {
		e.waitStatus(id, events.StatusFailed)
	}
	testenv.WaitFor(t, 10*time.Second, "two dead letters", func() bool {
		out, _ := e.cli("dlq", "list", "--json")
		var l []deadLetterView
		return json.Unmarshal([]byte(out), &l) == nil && len(l) == 2
	})
	stopWorker()
	// A pull request of the stopped worker left on the server would take a
	// replayed command and hold it for AckWait.
	testenv.WaitFor(t, 10*time.Second, "the stopped worker's pull requests to go", func() bool {
		c, err := e.js.Consumer(context.Background(), events.StreamCommands, events.ConsumerWorkers)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumWaiting == 0
	})

	// A stale revision does not clear the record.
	l, err := ledger.Open(context.Background(), e.js)
	if err != nil {
		t.Fatal(err)
	}
	led, err := l.Entry(context.Background(), ids[403])
	if err != nil || led == nil {
		t.Fatalf("ledger: %v %v", led, err)
	}
	if err := l.Clear(context.Background(), ids[403], led.Revision+1); err == nil {
		t.Fatal("ledger cleared at a revision it is not at")
	}

	for agent := range ids {
		e.register(agent, guids[agent])
	}
	out, err := e.cli("dlq", "replay", "--all", "--status", "failed")
	if err != nil {
		t.Fatalf("replay --all: %v\n%s", err, out)
	}
	if n := strings.Count(out, "replayed    command="); n != 2 {
		t.Fatalf("replay --all replayed %d commands, want 2:\n%s", n, out)
	}
	out, err = e.cli("dlq", "replay", ids[403]) // retried before any worker ran it
	if err != nil {
		t.Fatalf("retried replay: %v\n%s", err, out)
	}
	mustContain(t, "retried replay", out, "replayed", "stored already")
	st, err := e.js.Stream(context.Background(), events.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 4 { // 2 originals + 2 replays
		t.Fatalf("commands stream holds %d messages, want 4", n)
	}

	t.Cleanup(e.start("worker"))
	for _, id := range ids {
		e.waitStatus(id, events.StatusAccepted)
	}
	if got := e.sim.Executed(); got != 2 {
		t.Fatalf("gateway executed %d disconnects, want 2", got)
	}
	out, err = e.cli("dlq", "replay", "--all")
	if err == nil || strings.Count(out, "already accepted") != 2 {
		t.Fatalf("replay --all of accepted commands: %v\n%s", err, out)
	}

	// A plain accepted command: its result event is the ledger's result.
	const plain = "plain-accepted"
	e.call(403, "13800004039")
	e.publish(events.DisconnectCommand{CommandID: plain, AgentID: 403, Number: "13800004039", TTL: time.Minute})
	e.waitStatus(plain, events.StatusAccepted)
	var s *admin.CommandStatus
	testenv.WaitFor(t, 30*time.Second, "the result event and the confirmation", func() bool {
		s = e.status(plain)
		return s.ResultEvent != nil && s.Confirmation != nil
	})
	if s.ResultEvent.Value.Status != events.StatusAccepted || s.ResultEvent.Subject != events.ResultSubject(events.StatusAccepted) ||
		!s.ResultEvent.Value.CompletedAt.Equal(s.Ledger.Result.CompletedAt) {
		t.Fatalf("result event %+v, ledger %+v", s.ResultEvent, s.Ledger.Result)
	}
	out, err = e.cli("status", plain)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "status accepted", out, "accepted on callcontrol.results.accepted", "confirmed")
	mustNotContain(t, "status accepted", out, "earlier execution", "13800004039")
}

// A command whose outcome is unknown (the gateway may have executed it) or
// that a worker is executing is refused; --force replays the first with a
// new deadline and clears its ledger record.
func TestDLQReplayRefusesUnknownOutcome(t *testing.T) {
	e := newDLQEnv(t) // no worker: the dead letters are written here
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	deadLetter := func(id string, rec ledger.Record) {
		t.Helper()
		if rec.State != "" {
			b, _ := json.Marshal(rec)
			if _, err := kv.Put(ctx, id, b); err != nil {
				t.Fatal(err)
			}
		}
		cmd, _ := json.Marshal(events.DisconnectCommand{CommandID: id, AgentID: 501, Number: "13800005011", IssuedAt: now, TTL: time.Minute})
		m := nats.NewMsg(events.SubjectDeadLetter)
		m.Data = cmd
		m.Header.Set(events.HeaderCommandID, id)
		m.Header.Set(events.HeaderStatus, string(events.StatusFailed))
		m.Header.Set(events.HeaderReason, "x")
		m.Header.Set(events.HeaderTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter("unknown-1", ledger.Record{State: ledger.StateDone, Result: &events.Result{CommandID: "unknown-1", AgentID: 501,
		Status: events.StatusFailed, Reason: events.ReasonOutcomeUnknown + ": timeout", IssuedAt: now, ExpiresAt: now.Add(time.Minute),
		CallID: "1764691200-7"}})
	deadLetter("started-1", ledger.Record{State: ledger.StateStarted, Owner: "w1"})
	deadLetter("777", ledger.Record{State: ledger.StateStarted}) // a command_id of digits only
	if out, err := e.cli("dlq", "show", "777"); err != nil || !strings.Contains(out, "Callcontrol-Command-Id: 777") {
		t.Fatalf("dlq show of a digits-only command_id: %v\n%s", err, out)
	}
	if out, err := e.cli("dlq", "show", "2"); err != nil || !strings.Contains(out, "Callcontrol-Command-Id: started-1") {
		t.Fatalf("dlq show by sequence: %v\n%s", err, out)
	}

	out, err := e.cli("dlq", "replay", "unknown-1", "started-1")
	if err == nil {
		t.Fatalf("replay succeeded:\n%s", out)
	}
	mustContain(t, "replay", out, "command=unknown-1 dlq_seq=1: the gateway may have executed it", "command=started-1 dlq_seq=2: a worker is executing it now")
	if _, err := kv.Get(ctx, "unknown-1"); err != nil {
		t.Fatalf("a refused replay touched the ledger: %v", err)
	}
	// Without a ledger record: an accepted result, or a confirmation (the
	// replay's result may have been de-duplicated away), refuses it.
	publish := func(subject, id string, v any) {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data, _ = json.Marshal(v)
		m.Header.Set(events.HeaderCommandID, id)
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter("acc-1", ledger.Record{})
	publish(events.ResultSubject(events.StatusAccepted), "acc-1", events.Result{CommandID: "acc-1", Status: events.StatusAccepted})
	deadLetter("conf-1", ledger.Record{})
	publish(events.ConfirmationSubject(events.ConfirmationConfirmed), "conf-1", events.Confirmation{CommandID: "conf-1", Status: events.ConfirmationConfirmed})
	out, err = e.cli("dlq", "replay", "acc-1", "conf-1", "--force", "--ttl", "10s")
	if err == nil {
		t.Fatalf("replay of accepted commands without ledger records succeeded:\n%s", out)
	}
	mustContain(t, "replay without ledger", out, "command=acc-1 dlq_seq=4: already accepted (result", "command=conf-1 dlq_seq=5: already accepted (confirmation confirmed")

	out, err = e.cli("dlq", "replay", "unknown-1", "--force", "--ttl", "10s")
	if err != nil {
		t.Fatalf("forced replay: %v\n%s", err, out)
	}
	mustContain(t, "forced replay", out, "forced although the gateway may have executed", "ttl_ms to 10000")
	if _, err := kv.Get(ctx, "unknown-1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("ledger record after the replay: %v, want it cleared", err)
	}
	st, err := e.js.Stream(ctx, events.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, events.SubjectDisconnect)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := events.DecodeDisconnect(raw.Data)
	if err != nil || cmd.CommandID != "unknown-1" || cmd.TTL != 10*time.Second || !cmd.IssuedAt.After(now) ||
		!strings.HasPrefix(raw.Header.Get(events.HeaderMsgID), "replay-unknown-1-") {
		t.Fatalf("replayed command %+v (%v), headers %v", cmd, err, raw.Header)
	}
	// Found by the soak: the replay dropped the command's trace context.
	if tp := raw.Header.Get(events.HeaderTraceparent); tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("replayed command's traceparent = %q, want the dead letter's", tp)
	}
}

// A dead letter whose payload repeats a key is refused like a rejected
// one, whatever its status says: republishing its bytes would let the
// worker (or any other reader) pick either copy.
func TestDLQReplayRefusesRepeatedKeys(t *testing.T) {
	e := newDLQEnv(t) // no worker: the dead letter is written here
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec, _ := json.Marshal(ledger.Record{State: ledger.StateDone, Result: &events.Result{CommandID: "dup-1", AgentID: 102,
		Status: events.StatusFailed, Reason: "retries exhausted", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}})
	if _, err := kv.Put(ctx, "dup-1", rec); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(events.SubjectDeadLetter)
	m.Data = []byte(`{"command_id":"dup-1","agent_id":102,"number":"5550102","number":"5550103","issued_at":"` +
		now.Format(time.RFC3339Nano) + `","ttl_ms":60000}`)
	m.Header.Set(events.HeaderCommandID, "dup-1")
	m.Header.Set(events.HeaderStatus, string(events.StatusFailed))
	m.Header.Set(events.HeaderReason, "retries exhausted")
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	out, err := e.cli("dlq", "replay", "dup-1")
	if err == nil {
		t.Fatalf("replay succeeded:\n%s", out)
	}
	mustContain(t, "replay", out, "command=dup-1 dlq_seq=1: rejected commands cannot be replayed", "number: must appear once")
	if _, err := kv.Get(ctx, "dup-1"); err != nil {
		t.Fatalf("a refused replay touched the ledger: %v", err)
	}
	st, err := e.js.Stream(ctx, events.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("commands stream after a refused replay: %+v, %v", info.State, err)
	}
}

// A dead-lettered command whose call has ended is refused by replay,
// --force included: the customer has called back, and a replay would hang
// up the new call (DESIGN.md #8).
func TestDLQReplayRefusesAnEndedCall(t *testing.T) {
	e := newDLQEnv(t, "worker", "poller")
	const agent, number, id = 405, "13800004051", "dlq-ended-1"
	e.signIn(agent, number)
	e.waitCall(agent)
	e.publish(events.DisconnectCommand{CommandID: id, AgentID: agent, Number: number,
		IssuedAt: time.Now().Add(-10 * time.Minute).UTC(), TTL: time.Second})
	st := e.waitStatus(id, events.StatusExpired)
	callA := st.Ledger.Result.CallID
	if callA == "" {
		t.Fatalf("the expired result names no call: %+v", st.Ledger.Result)
	}
	e.sim.SetRedialAfter(0)
	if _, err := e.sim.EndCall(agent, callA); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.Redial(agent, number); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the redialed call in the call state", func() bool {
		cs, err := newAdmin(e.js).CallState(context.Background(), agent)
		return err == nil && cs != nil && cs.LastCall() != nil && cs.LastCall().CallID != callA
	})
	testenv.WaitFor(t, 10*time.Second, "the dead letter", func() bool { _, err := e.cli("dlq", "show", id); return err == nil })
	if out, err := e.cli("dlq", "replay", id); err == nil { // past its deadline, too
		t.Fatalf("replay succeeded:\n%s", out)
	}
	out, err := e.cli("dlq", "replay", "--force", "--ttl", "30s", id)
	if err == nil {
		t.Fatalf("forced replay succeeded:\n%s", out)
	}
	mustContain(t, "forced replay", out, "refused", events.ReasonCallEnded, callA)
	if got := e.sim.Executed(); got != 0 {
		t.Fatalf("gateway executed %d disconnects, want 0", got)
	}
}
