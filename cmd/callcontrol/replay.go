package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// replayGuard is the least time to its deadline a replayed command must
// have left: less, and a worker could not start it anyway.
const replayGuard = time.Second

// Replay semantics (why it is safe):
//
//   - The command keeps its command_id, so the ledger, the result and the
//     confirmation still name it. The ledger would make a worker replay the
//     stored result instead of executing, so replay deletes the ledger
//     record first, with a compare-and-set on the revision it checked, and
//     only when that record is a failed or expired outcome. An
//     accepted record is never deleted: that would allow a second release.
//     "started" (a worker executing it now) is refused too. Deleting, not
//     marking, the record makes the replay a fresh execution: a worker that
//     finds a record treats the command as possibly sent before, and would
//     report a party that is already gone as accepted.
//   - Without a ledger record (older than the ledger TTL, or cleared by an
//     earlier replay attempt) the results stream is searched for an
//     accepted result after the dead letter, and the events stream for a
//     confirmation of it; either refuses the replay.
//   - The ledger is cleared before publishing: the other order lets a
//     worker find the old record and replay the old result. The Nats-Msg-Id
//     is "replay-<command_id>-<revision of the ledger's delete marker>"
//     (see [replayMsgID]): not the original's, so the commands stream does
//     not drop it as a duplicate; new for each replay, so replaying again
//     after the replay failed again works; and the same for every attempt
//     of one replay (a retry after a publish error finds no record and the
//     same marker), so a retried replay is stored once. Should a duplicate
//     be stored anyway (a retry after the de-duplication window), the
//     ledger and the agent lease still keep the worker from executing it
//     twice: the second copy finds the first one's record.
//   - The deadline is the original one: a command without issued_at and
//     expires_at is republished with issued_at (and ttl_ms) pinned to the
//     values its first execution used, since a worker would otherwise date
//     it from the replay. A command past its deadline, or whose deadline is
//     not known, is refused unless --force, which sets issued_at to now and
//     ttl_ms to --ttl (both explicit, and printed).
//   - A failed or expired command whose reason is outcome_unknown may have
//     been executed by the gateway, and so may one that ran out of
//     deliveries (max_deliveries: its workers died, possibly mid-request):
//     both are refused unless --force.
//   - Dead letters are not removed: the stream is the audit trail (7 days,
//     limits retention). The replayed command carries
//     events.HeaderReplayOf, so its result and, if it fails again, its
//     dead letter get Nats-Msg-Ids of their own ("result-<command_id>-replay-<seq>")
//     and are stored next to the first run's.
type replayer struct {
	js    jetstream.JetStream
	nm    numberMasker
	force bool
	ttl   time.Duration
	now   func() time.Time
}

// replayed is what one replay did.
type replayed struct {
	msgID     string
	deadline  time.Time
	duplicate bool // an earlier attempt of this replay was stored already
	notes     []string
}

// replay republishes the command of dead letter d, or says why not.
func (r *replayer) replay(ctx context.Context, d deadLetter) (replayed, error) {
	var out replayed
	if d.DecodeErr != nil || d.Status == events.StatusRejected {
		return out, fmt.Errorf("rejected commands cannot be replayed: the payload breaks a rule (%s); publish a corrected command with a new command_id",
			r.nm.text(errString(d.DecodeErr), d.Cmd.Number))
	}
	id := d.CommandID
	if id != d.Cmd.CommandID {
		return out, fmt.Errorf("header %s %q does not match the payload's command_id", events.HeaderCommandID, id)
	}
	led, err := readLedger(ctx, r.js, id)
	if err != nil {
		return out, err
	}
	if err := r.checkNotExecuted(ctx, d, led); err != nil {
		return out, err
	}
	prev, err := r.previousResult(ctx, d, led)
	if err != nil {
		return out, err
	}
	cmd, data, err := r.command(d, prev, &out)
	if err != nil {
		return out, err
	}
	unscoped := cmd.CallID == ""
	if err := r.scopeReplay(ctx, &cmd, prev, &out); err != nil {
		return out, err
	}
	if unscoped && cmd.CallID != "" {
		if cmd, data, err = encodeCommand(cmd); err != nil {
			return out, err
		}
	}
	if led != nil {
		if err := clearLedger(ctx, r.js, id, led.Revision); err != nil {
			return out, err
		}
	}
	if out.msgID, err = replayMsgID(ctx, r.js, id, d.Seq); err != nil {
		return out, err
	}
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	m.Header.Set(events.HeaderMsgID, out.msgID)
	m.Header.Set(events.HeaderReplayOf, strconv.FormatUint(d.Seq, 10))
	if prev != nil && !prev.StoredAt.IsZero() {
		m.Header.Set(events.HeaderReplayStoredAt, prev.StoredAt.UTC().Format(time.RFC3339Nano))
	}
	// The replay continues the command's trace (the dead letter carries it).
	for _, h := range []string{events.HeaderTraceparent, events.HeaderTracestate} {
		if v := d.Header.Get(h); v != "" {
			m.Header.Set(h, v)
		}
	}
	ack, err := r.js.PublishMsg(ctx, m)
	if err != nil {
		return out, fmt.Errorf("publish command (the ledger record is cleared; run the replay again): %w", err)
	}
	out.duplicate = ack.Duplicate
	out.deadline = cmd.Deadline(time.Time{}, 0)
	return out, nil
}

// checkNotExecuted refuses a command that was (or is being) executed.
func (r *replayer) checkNotExecuted(ctx context.Context, d deadLetter, led *ledger.Entry) error {
	switch {
	case led != nil && led.Accepted():
		return fmt.Errorf("already accepted (ledger revision %d, %s): replaying would release the party again",
			led.Revision, led.Result.CompletedAt.UTC().Format(time.RFC3339))
	case led != nil && led.State == ledger.StateStarted:
		return fmt.Errorf("a worker is executing it now (ledger state %q, revision %d)", led.State, led.Revision)
	case led != nil && led.State != ledger.StateDone:
		return fmt.Errorf("unknown ledger state %q (revision %d): not touching it", led.State, led.Revision)
	case led != nil:
		return nil
	}
	// No record: look for an accepted result since the dead letter, and for
	// a confirmation (every accepted command gets one, and its result may
	// have been dropped as a duplicate of the first run's). Cost: the
	// accepted results and the confirmations stored since then.
	from := d.Time.Add(-clockSlack)
	w := scanWindow{stream: events.StreamResults, subject: events.ResultSubject(events.StatusAccepted), from: from}
	acc, err := findFirst[events.Result](ctx, r.js, w, d.CommandID)
	if err != nil {
		return err
	}
	if acc != nil {
		return fmt.Errorf("already accepted (result %d in %s, %s): replaying would release the party again",
			acc.Seq, events.StreamResults, acc.Value.CompletedAt.UTC().Format(time.RFC3339))
	}
	w = scanWindow{stream: events.StreamEvents, subject: events.SubjectConfirmations + ".>", from: from}
	conf, err := findFirst[events.Confirmation](ctx, r.js, w, d.CommandID)
	if err != nil {
		return err
	}
	if conf != nil {
		return fmt.Errorf("already accepted (confirmation %s %d in %s): replaying would release the party again",
			conf.Value.Status, conf.Seq, events.StreamEvents)
	}
	return nil
}

// previousResult returns the result the dead letter was written with: the
// ledger's, else the result event published just before the dead letter
// (nil when neither is left).
func (r *replayer) previousResult(ctx context.Context, d deadLetter, led *ledger.Entry) (*events.Result, error) {
	if led != nil && led.Result != nil {
		return led.Result, nil
	}
	w := scanWindow{stream: events.StreamResults, subject: events.SubjectResults + ".>",
		from: d.Time.Add(-2 * time.Minute), to: d.Time.Add(clockSlack)}
	f, err := findLast[events.Result](ctx, r.js, w, d.CommandID)
	if err != nil || f == nil {
		return nil, err
	}
	return &f.Value, nil
}

// command returns the command to republish and its payload: the original
// bytes when they carry their own deadline, else re-encoded with it pinned
// (or, with --force, re-dated to now).
func (r *replayer) command(d deadLetter, prev *events.Result, out *replayed) (events.DisconnectCommand, []byte, error) {
	cmd := d.Cmd
	reason := d.Reason
	if prev != nil {
		reason = prev.Reason
	}
	unknown := strings.HasPrefix(reason, events.ReasonOutcomeUnknown) || strings.HasPrefix(reason, events.ReasonMaxDeliveries)
	if r.force {
		old := "unknown"
		if prev != nil && !prev.ExpiresAt.IsZero() {
			old = prev.ExpiresAt.UTC().Format(time.RFC3339)
		}
		cmd.IssuedAt, cmd.TTL, cmd.ExpiresAt = r.now().UTC(), r.ttl, time.Time{}
		out.notes = append(out.notes, fmt.Sprintf("forced: issued_at set to %s and ttl_ms to %d (original deadline %s)",
			cmd.IssuedAt.Format(time.RFC3339Nano), r.ttl.Milliseconds(), old))
		if unknown {
			out.notes = append(out.notes, "forced although the gateway may have executed the command before (reason "+r.nm.text(reason, cmd.Number)+")")
		}
		return encodeCommand(cmd)
	}
	if unknown {
		return cmd, nil, fmt.Errorf("the gateway may have executed it (reason %q): check 'callcontrol status %s' and the agent's release events; replay anyway with --force --ttl <d>",
			r.nm.text(reason, cmd.Number), cmd.CommandID)
	}
	// Without expires_at, a worker dates the command from when it was
	// stored and applies its default TTL: pin both to the first execution's.
	pinned := cmd.ExpiresAt.IsZero() && (cmd.IssuedAt.IsZero() || cmd.TTL == 0)
	if pinned {
		if prev == nil || prev.IssuedAt.IsZero() || prev.ExpiresAt.IsZero() {
			return cmd, nil, fmt.Errorf("its deadline is not known (the payload leaves it to the worker, and no ledger record or result is left): replay with --force --ttl <d>")
		}
		if cmd.IssuedAt.IsZero() {
			cmd.IssuedAt = prev.IssuedAt
		}
		if cmd.TTL == 0 {
			cmd.TTL = max(prev.ExpiresAt.Sub(cmd.IssuedAt), time.Millisecond)
		}
	}
	if dl := cmd.Deadline(time.Time{}, 0); dl.Sub(r.now()) < replayGuard {
		return cmd, nil, fmt.Errorf("its deadline passed at %s (a late disconnect can hang up the agent's next call); replay with --force --ttl <d> to give it a new one",
			dl.UTC().Format(time.RFC3339))
	}
	if !pinned {
		return cmd, d.Payload, nil
	}
	out.notes = append(out.notes, "issued_at and ttl_ms pinned to the first execution's, so the deadline stays the same")
	return encodeCommand(cmd)
}

func encodeCommand(cmd events.DisconnectCommand) (events.DisconnectCommand, []byte, error) {
	if err := cmd.Validate(); err != nil {
		return cmd, nil, fmt.Errorf("replayed command: %w", err)
	}
	b, err := json.Marshal(cmd)
	return cmd, b, err
}
