package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go"
)

// A command for an agent without a session fails and is dead-lettered;
// list and show present it with the number masked; once the agent is
// signed in, replay runs it again under the same command_id and it is
// accepted and confirmed; a second replay is refused.
func TestDLQReplayAfterFixingTheCause(t *testing.T) {
	e := newDLQEnv(t, "worker", "poller")
	const agent, number, id = 401, "13800004011", "dlq-fail-1"
	guid := e.onCall(agent, number) // the customer's call, before the command for it
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
	e.register(agent, guid)
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
	e.waitCall(agent) // so that its result names the call it meant, for the replay
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
