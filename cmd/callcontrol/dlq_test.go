package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dlqEnv is a NATS server, a simulator, a worker and a poller for one test.
type dlqEnv struct {
	t           *testing.T
	natsURL     string
	js          jetstream.JetStream
	sim         *gatewaysim.Sim
	gwURL, gwCA string
}

// newDLQEnv starts roles ("worker", "poller") for the whole test.
func newDLQEnv(t *testing.T, roles ...string) *dlqEnv {
	t.Helper()
	natsURL, js := testJetStream(t, worker.Config{})
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{})
	e := &dlqEnv{t: t, natsURL: natsURL, js: js, sim: sim, gwURL: gwURL, gwCA: ca}
	if len(roles) > 0 {
		t.Cleanup(e.start(roles...))
	}
	return e
}

// start runs the roles in this process until the returned func is called.
func (e *dlqEnv) start(roles ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(roles))
	common := []string{"--nats-url", e.natsURL, "--gateway-url", e.gwURL, "--gateway-ca", e.gwCA, "--log-level", "error"}
	for _, role := range roles {
		go func() { done <- run(ctx, append([]string{role}, common...), &bytes.Buffer{}) }()
	}
	return func() {
		cancel()
		for range roles {
			if err := <-done; err != nil {
				e.t.Errorf("role: %v", err)
			}
		}
	}
}

// cli runs one callcontrol command against the test's NATS server.
func (e *dlqEnv) cli(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append(args, "--nats-url", e.natsURL), &out)
	return out.String(), err
}

// status returns the command's status, or nil while it is not found.
func (e *dlqEnv) status(id string) *commandStatus {
	out, err := e.cli("status", id, "--json", "--reveal-number")
	if err != nil {
		return nil
	}
	var st commandStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return &st
}

// waitStatus polls status until the ledger holds a result with status s.
func (e *dlqEnv) waitStatus(id string, s events.Status) *commandStatus {
	e.t.Helper()
	var st *commandStatus
	testenv.WaitFor(e.t, 20*time.Second, "command "+id+" to be "+string(s), func() bool {
		st = e.status(id)
		return st != nil && st.Ledger != nil && st.Ledger.Result != nil && st.Ledger.Result.Status == s
	})
	return st
}

// signIn gives agent a session and a call with number.
func (e *dlqEnv) signIn(agent int, number string) {
	e.t.Helper()
	guid, err := e.sim.SignIn(agent)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := registerSession(context.Background(), e.js, agent, guid, 1); err != nil {
		e.t.Fatal(err)
	}
	e.call(agent, number)
}

func (e *dlqEnv) call(agent int, number string) {
	e.t.Helper()
	if _, err := e.sim.StartCall(agent, number); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dlqEnv) publish(cmd events.DisconnectCommand) {
	e.t.Helper()
	if err := publishCommand(context.Background(), e.js, cmd, ""); err != nil {
		e.t.Fatal(err)
	}
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: want %q in:\n%s", what, w, out)
		}
	}
}

func mustNotContain(t *testing.T, what, out string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(out, b) {
			t.Fatalf("%s: %q must not appear in:\n%s", what, b, out)
		}
	}
}

// A command for an agent without a session fails and is dead-lettered;
// list and show present it with the number masked; once the agent is
// signed in, replay runs it again under the same command_id and it is
// accepted and confirmed; a second replay is refused.
func TestDLQReplayAfterFixingTheCause(t *testing.T) {
	e := newDLQEnv(t, "worker", "poller")
	const agent, number, id = 401, "13800004011", "dlq-fail-1"
	e.publish(events.DisconnectCommand{CommandID: id, AgentID: agent, Number: number, IssuedAt: time.Now().UTC(), TTL: 2 * time.Minute})
	st := e.waitStatus(id, events.StatusFailed)
	if !strings.HasPrefix(st.Ledger.Result.Reason, events.ReasonNoSession) {
		t.Fatalf("failed for %q, want %s", st.Ledger.Result.Reason, events.ReasonNoSession)
	}

	var list []deadLetterView
	testenv.WaitFor(t, 10*time.Second, "the dead letter", func() bool {
		out, err := e.cli("dlq", "list", "--json", "--status", "failed")
		if err != nil {
			t.Fatalf("dlq list: %v", err)
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("dlq list --json: %v\n%s", err, out)
		}
		return len(list) == 1
	})
	if d := list[0]; d.CommandID != id || d.Status != "failed" || d.AgentID != agent || d.Number != "*******4011" ||
		!strings.HasPrefix(d.Reason, events.ReasonNoSession) || d.Seq == 0 || d.Time.IsZero() {
		t.Fatalf("dlq list entry = %+v", d)
	}
	out, err := e.cli("dlq", "list")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "dlq list", out, "SEQ", id, "failed", "*******4011", events.ReasonNoSession)
	mustNotContain(t, "dlq list", out, number)
	if out, _ := e.cli("dlq", "list", "--status", "expired", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("dlq list --status expired = %s, want []", out)
	}

	out, err = e.cli("dlq", "show", id)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "dlq show", out, events.HeaderReason+": "+events.ReasonNoSession, `"number": "*******4011"`, `"command_id": "`+id)
	mustNotContain(t, "dlq show", out, number)
	if out, _ := e.cli("dlq", "show", id, "--reveal-number"); !strings.Contains(out, number) {
		t.Fatalf("dlq show --reveal-number: no number in\n%s", out)
	}

	// Replayed before the cause is fixed: it fails again.
	first := st.Ledger.Result.CompletedAt
	out, err = e.cli("dlq", "replay", id)
	if err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	mustContain(t, "dlq replay", out, "replayed", "command="+id, "msg_id=replay-"+id+"-")
	mustNotContain(t, "dlq replay", out, number)
	msgID := regexp.MustCompile(`msg_id=(\S+)`).FindStringSubmatch(out)[1]
	testenv.WaitFor(t, 20*time.Second, "the replay to fail again", func() bool {
		st = e.status(id)
		return st != nil && st.Ledger != nil && st.Ledger.Result != nil && st.Ledger.Result.CompletedAt.After(first)
	})
	if st.Ledger.Result.Status != events.StatusFailed {
		t.Fatalf("replay without a session: %+v", st.Ledger.Result)
	}

	// Fixed and replayed again: a new Nats-Msg-Id, so it is not dropped.
	e.signIn(agent, number)
	out, err = e.cli("dlq", "replay", id)
	if err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	if again := regexp.MustCompile(`msg_id=(\S+)`).FindStringSubmatch(out)[1]; again == msgID {
		t.Fatalf("second replay reused Nats-Msg-Id %s", msgID)
	}
	st = e.waitStatus(id, events.StatusAccepted)
	if got := e.sim.Executed(); got != 1 {
		t.Fatalf("gateway executed %d disconnects, want 1", got)
	}
	testenv.WaitFor(t, 30*time.Second, "the confirmation", func() bool {
		st = e.status(id)
		return st != nil && st.Confirmation != nil
	})
	if c := st.Confirmation.Value; c.Status != events.ConfirmationConfirmed {
		t.Fatalf("confirmation = %+v", c)
	}
	out, err = e.cli("status", id)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "status", out, "accepted", "confirmed", "*******4011", "ledger", "done (revision")
	// The replay's result has a Nats-Msg-Id of its own: stored, not
	// de-duplicated against the first run's failure.
	mustContain(t, "status", out, "accepted on callcontrol.results.accepted")
	mustNotContain(t, "status", out, number, "earlier execution")

	out, err = e.cli("dlq", "replay", id)
	if err == nil {
		t.Fatalf("second replay of an accepted command succeeded:\n%s", out)
	}
	mustContain(t, "second replay", out, "refused", "already accepted")
	if got := e.sim.Executed(); got != 1 {
		t.Fatalf("gateway executed %d disconnects after the refused replay, want 1", got)
	}
}

// An expired command is refused without --force; with --force and --ttl it
// runs with a new deadline (and says so). A rejected command cannot be
// replayed. A GUID override in a dead letter is never shown.
func TestDLQReplayExpiredRejectedAndSecrets(t *testing.T) {
	e := newDLQEnv(t, "worker", "poller")
	const agent, number, id = 402, "13800004021", "dlq-exp-1"
	e.signIn(agent, number)
	e.publish(events.DisconnectCommand{CommandID: id, AgentID: agent, Number: number,
		IssuedAt: time.Now().Add(-10 * time.Minute).UTC(), TTL: time.Second})
	e.waitStatus(id, events.StatusExpired)
	testenv.WaitFor(t, 10*time.Second, "the dead letter", func() bool { _, err := e.cli("dlq", "show", id); return err == nil })

	out, err := e.cli("dlq", "replay", id)
	if err == nil {
		t.Fatalf("replay of an expired command succeeded:\n%s", out)
	}
	mustContain(t, "expired replay", out, "refused", "deadline passed", "--force")
	if _, err := e.cli("dlq", "replay", id, "--force"); err == nil || !strings.Contains(err.Error(), "--ttl (CALLCONTROL_TTL): required with --force") {
		t.Fatalf("--force without --ttl: %v", err)
	}
	out, err = e.cli("dlq", "replay", "--force", "--ttl", "30s", id)
	if err != nil {
		t.Fatalf("forced replay: %v\n%s", err, out)
	}
	mustContain(t, "forced replay", out, "replayed", "forced: issued_at set to", "ttl_ms to 30000")
	e.waitStatus(id, events.StatusAccepted)
	if got := e.sim.Executed(); got != 1 {
		t.Fatalf("gateway executed %d disconnects, want 1", got)
	}

	// Rejected: an agent outside the range; the payload carries a GUID.
	const guid = "0f0e0d0c-secret.AgentGateway1"
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = []byte(`{"command_id":"dlq-bad-1","agent_id":42,"number":"13800004029","guid":"` + guid + `"}`)
	m.Header.Set(events.HeaderMsgID, "dlq-bad-1")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the rejected dead letter", func() bool { _, err := e.cli("dlq", "show", "dlq-bad-1"); return err == nil })
	out, err = e.cli("dlq", "show", "dlq-bad-1")
	if err != nil {
		t.Fatal(err)
	}
	// The worker drops the GUID override from the dead-letter copy; show
	// would print one as [redacted] anyway.
	mustContain(t, "show rejected", out, "invalid command: agent_id")
	mustNotContain(t, "show rejected", out, "secret", "13800004029", `"guid"`)
	out, err = e.cli("dlq", "show", "dlq-bad-1", "--json", "--reveal-number")
	if err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "show rejected --json", out, "secret")
	out, err = e.cli("dlq", "replay", "dlq-bad-1")
	if err == nil {
		t.Fatalf("replay of a rejected command succeeded:\n%s", out)
	}
	mustContain(t, "rejected replay", out, "rejected commands cannot be replayed", "agent_id")
	if out, err := e.cli("status", "dlq-bad-1"); err != nil || !strings.Contains(out, "rejected") {
		t.Fatalf("status of a rejected command: %v\n%s", err, out)
	}
}

// replay --all replays each matching command once; a replay repeated
// before a worker ran it is stored once (same Nats-Msg-Id); the ledger
// record is cleared only at the revision that was checked; status shows a
// plainly accepted command with its result event and confirmation.
func TestDLQReplayAllAndRetriedReplay(t *testing.T) {
	e := newDLQEnv(t, "poller")
	stopWorker := e.start("worker")
	ids := map[int]string{403: "dlq-all-403", 404: "dlq-all-404"}
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
	led, err := readLedger(context.Background(), e.js, ids[403])
	if err != nil || led == nil {
		t.Fatalf("ledger: %v %v", led, err)
	}
	if err := clearLedger(context.Background(), e.js, ids[403], led.Revision+1); err == nil {
		t.Fatal("ledger cleared at a revision it is not at")
	}

	for agent := range ids {
		e.signIn(agent, "1380000"+itoa0(agent))
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
	var s *commandStatus
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
	deadLetter := func(id string, rec ledgerRecord) {
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
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter("unknown-1", ledgerRecord{State: ledgerDone, Result: &events.Result{CommandID: "unknown-1", AgentID: 501,
		Status: events.StatusFailed, Reason: events.ReasonOutcomeUnknown + ": timeout", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}})
	deadLetter("started-1", ledgerRecord{State: ledgerStarted, Owner: "w1"})
	deadLetter("777", ledgerRecord{State: ledgerStarted}) // a command_id of digits only
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
	deadLetter("acc-1", ledgerRecord{})
	publish(events.ResultSubject(events.StatusAccepted), "acc-1", events.Result{CommandID: "acc-1", Status: events.StatusAccepted})
	deadLetter("conf-1", ledgerRecord{})
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
}
