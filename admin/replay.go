package admin

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
)

// replayGuard is the least time to its deadline a replayed command must
// have left: less, and a worker could not start it anyway.
const replayGuard = time.Second

// ReplayOptions are the settings of one [Client.Replay].
type ReplayOptions struct {
	// Force replays a command past its deadline, with an unknown deadline
	// or with an unknown outcome: issued_at becomes now and ttl_ms TTL.
	Force bool
	// TTL is the new lifetime of a forced replay (required with Force).
	TTL time.Duration
	// Masker masks the number in the refusals' and notes' text.
	Masker Masker
}

// Replayed is what one replay did.
type Replayed struct {
	MsgID     string    // the Nats-Msg-Id the command was republished with
	Deadline  time.Time // the replayed command's deadline
	Duplicate bool      // an earlier attempt of this replay was stored already
	Notes     []string  // what was changed or assumed, for the operator
}

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
//     (see [ledger.Ledger.ReplayMsgID]): not the original's, so the
//     commands stream does not drop it as a duplicate; new for each
//     replay, so replaying again after the replay failed again works; and
//     the same for every attempt of one replay (a retry after a publish
//     error finds no record and the same marker), so a retried replay is
//     stored once. Should a duplicate be stored anyway (a retry after the
//     de-duplication window), the ledger and the agent lease still keep
//     the worker from executing it twice: the second copy finds the first
//     one's record.
//   - The deadline is the original one: a command without issued_at and
//     expires_at is republished with issued_at (and ttl_ms) pinned to the
//     values its first execution used, since a worker would otherwise date
//     it from the replay. A command past its deadline, or whose deadline is
//     not known, is refused unless Force, which sets issued_at to now and
//     ttl_ms to TTL (both explicit, and noted).
//   - A failed or expired command whose reason is outcome_unknown may have
//     been executed by the gateway, and so may one that ran out of
//     deliveries (max_deliveries: its workers died, possibly mid-request):
//     both are refused unless Force.
//   - The replay is scoped to the call the command meant (DESIGN.md #8),
//     and refused when the live call state shows that call is over.
//   - Dead letters are not removed: the stream is the audit trail (7 days,
//     limits retention). The replayed command carries
//     events.HeaderReplayOf, so its result and, if it fails again, its
//     dead letter get Nats-Msg-Ids of their own ("result-<command_id>-replay-<seq>")
//     and are stored next to the first run's.
type replayer struct {
	c   *Client
	led ledger.Ledger
	ReplayOptions
}

// Replay republishes the command of dead letter d, or says why not: a
// [*ReplayRefusedError] when it must not be replayed (nothing changed),
// another error when a stream or bucket could not be read or the publish
// failed (after the ledger record was cleared: run the replay again).
func (c *Client) Replay(ctx context.Context, d DeadLetter, opts ReplayOptions) (Replayed, error) {
	r := &replayer{c: c, ReplayOptions: opts}
	return r.replay(ctx, d)
}

func (r *replayer) replay(ctx context.Context, d DeadLetter) (Replayed, error) {
	var out Replayed
	if d.DecodeErr != nil || d.Status == events.StatusRejected {
		return out, refused(RefusedRejected, "rejected commands cannot be replayed: the payload breaks a rule (%s); publish a corrected command with a new command_id",
			r.Masker.Text(errString(d.DecodeErr), d.Cmd.Number))
	}
	if d.CommandID != d.Cmd.CommandID {
		return out, refused(RefusedIDMismatch, "header %s %q does not match the payload's command_id", events.HeaderCommandID, d.CommandID)
	}
	var err error
	if r.led, err = ledger.Open(ctx, r.c.js); err != nil {
		return out, err
	}
	entry, err := r.led.Entry(ctx, d.CommandID)
	if err != nil {
		return out, err
	}
	if err := r.checkNotExecuted(ctx, d, entry); err != nil {
		return out, err
	}
	prev, err := r.previousResult(ctx, d, entry)
	if err != nil {
		return out, err
	}
	cmd, data, err := r.prepare(ctx, d, prev, &out)
	if err != nil {
		return out, err
	}
	if entry != nil {
		if err := r.led.Clear(ctx, d.CommandID, entry.Revision); err != nil {
			return out, err
		}
	}
	return r.publish(ctx, d, cmd, data, prev, out)
}

// prepare returns the command to republish, checked and scoped, and its
// payload.
func (r *replayer) prepare(ctx context.Context, d DeadLetter, prev *events.Result, out *Replayed) (events.DisconnectCommand, []byte, error) {
	cmd, data, err := r.command(d, prev, out)
	if err != nil {
		return cmd, nil, err
	}
	unscoped := cmd.CallID == ""
	if err := r.scopeReplay(ctx, &cmd, prev, out); err != nil {
		return cmd, nil, err
	}
	if unscoped && cmd.CallID != "" {
		return encodeCommand(cmd)
	}
	return cmd, data, nil
}

// publish republishes cmd as a replay of d under the replay's Nats-Msg-Id.
func (r *replayer) publish(ctx context.Context, d DeadLetter, cmd events.DisconnectCommand, data []byte, prev *events.Result, out Replayed) (Replayed, error) {
	var err error
	if out.MsgID, err = r.led.ReplayMsgID(ctx, d.CommandID, d.Seq); err != nil {
		return out, err
	}
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	m.Header.Set(events.HeaderMsgID, out.MsgID)
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
	ack, err := r.c.js.PublishMsg(ctx, m)
	if err != nil {
		return out, fmt.Errorf("publish command (the ledger record is cleared; run the replay again): %w", err)
	}
	out.Duplicate = ack.Duplicate
	out.Deadline = cmd.Deadline(time.Time{}, 0)
	return out, nil
}

// checkNotExecuted refuses a command that was (or is being) executed.
func (r *replayer) checkNotExecuted(ctx context.Context, d DeadLetter, led *ledger.Entry) error {
	switch {
	case led != nil && led.Accepted():
		return refused(RefusedAlreadyExecuted, "already accepted (ledger revision %d, %s): replaying would release the party again",
			led.Revision, led.Result.CompletedAt.UTC().Format(time.RFC3339))
	case led != nil && led.State == ledger.StateStarted:
		return refused(RefusedExecuting, "a worker is executing it now (ledger state %q, revision %d)", led.State, led.Revision)
	case led != nil && led.State != ledger.StateDone:
		return refused(RefusedUnknownState, "unknown ledger state %q (revision %d): not touching it", led.State, led.Revision)
	case led != nil:
		return nil
	}
	return r.checkNoAcceptance(ctx, d)
}

// checkNoAcceptance refuses a command without a ledger record that has an
// accepted result since the dead letter, or a confirmation (every
// accepted command gets one, and its result may have been dropped as a
// duplicate of the first run's). Cost: the accepted results and the
// confirmations stored since then.
func (r *replayer) checkNoAcceptance(ctx context.Context, d DeadLetter) error {
	from := d.Time.Add(-clockSlack)
	w := scanWindow{stream: events.StreamResults, subject: events.ResultSubject(events.StatusAccepted), from: from}
	acc, err := findFirst[events.Result](ctx, r.c.js, w, d.CommandID)
	if err != nil {
		return err
	}
	if acc != nil {
		return refused(RefusedAlreadyExecuted, "already accepted (result %d in %s, %s): replaying would release the party again",
			acc.Seq, events.StreamResults, acc.Value.CompletedAt.UTC().Format(time.RFC3339))
	}
	w = scanWindow{stream: events.StreamEvents, subject: events.SubjectConfirmations + ".>", from: from}
	conf, err := findFirst[events.Confirmation](ctx, r.c.js, w, d.CommandID)
	if err != nil {
		return err
	}
	if conf != nil {
		return refused(RefusedAlreadyExecuted, "already accepted (confirmation %s %d in %s): replaying would release the party again",
			conf.Value.Status, conf.Seq, events.StreamEvents)
	}
	return nil
}

// previousResult returns the result the dead letter was written with: the
// ledger's, else the result event published just before the dead letter
// (nil when neither is left).
func (r *replayer) previousResult(ctx context.Context, d DeadLetter, led *ledger.Entry) (*events.Result, error) {
	if led != nil && led.Result != nil {
		return led.Result, nil
	}
	w := scanWindow{stream: events.StreamResults, subject: events.SubjectResults + ".>",
		from: d.Time.Add(-2 * time.Minute), to: d.Time.Add(clockSlack)}
	f, err := findLast[events.Result](ctx, r.c.js, w, d.CommandID)
	if err != nil || f == nil {
		return nil, err
	}
	return &f.Value, nil
}

// command returns the command to republish and its payload: the original
// bytes when they carry their own deadline, else re-encoded with it pinned
// (or, with Force, re-dated to now).
func (r *replayer) command(d DeadLetter, prev *events.Result, out *Replayed) (events.DisconnectCommand, []byte, error) {
	cmd := d.Cmd
	reason := d.Reason
	if prev != nil {
		reason = prev.Reason
	}
	unknown := strings.HasPrefix(reason, events.ReasonOutcomeUnknown) || strings.HasPrefix(reason, events.ReasonMaxDeliveries)
	if r.Force {
		return r.forced(cmd, prev, reason, unknown, out)
	}
	if unknown {
		return cmd, nil, refused(RefusedOutcomeUnknown, "the gateway may have executed it (reason %q): check 'callcontrol status %s' and the agent's release events; replay anyway with --force --ttl <d>",
			r.Masker.Text(reason, cmd.Number), cmd.CommandID)
	}
	// Without expires_at, a worker dates the command from when it was
	// stored and applies its default TTL: pin both to the first execution's.
	pinned := cmd.ExpiresAt.IsZero() && (cmd.IssuedAt.IsZero() || cmd.TTL == 0)
	if pinned {
		if prev == nil || prev.IssuedAt.IsZero() || prev.ExpiresAt.IsZero() {
			return cmd, nil, refused(RefusedDeadlineUnknown, "its deadline is not known (the payload leaves it to the worker, and no ledger record or result is left): replay with --force --ttl <d>")
		}
		if cmd.IssuedAt.IsZero() {
			cmd.IssuedAt = prev.IssuedAt
		}
		if cmd.TTL == 0 {
			cmd.TTL = max(prev.ExpiresAt.Sub(cmd.IssuedAt), time.Millisecond)
		}
	}
	if dl := cmd.Deadline(time.Time{}, 0); dl.Sub(r.c.now()) < replayGuard {
		return cmd, nil, refused(RefusedExpired, "its deadline passed at %s (a late disconnect can hang up the agent's next call); replay with --force --ttl <d> to give it a new one",
			dl.UTC().Format(time.RFC3339))
	}
	if !pinned {
		return cmd, d.Payload, nil
	}
	out.Notes = append(out.Notes, "issued_at and ttl_ms pinned to the first execution's, so the deadline stays the same")
	return encodeCommand(cmd)
}

// forced re-dates cmd to now with the new TTL, noting what it overrides.
func (r *replayer) forced(cmd events.DisconnectCommand, prev *events.Result, reason string, unknown bool, out *Replayed) (events.DisconnectCommand, []byte, error) {
	old := "unknown"
	if prev != nil && !prev.ExpiresAt.IsZero() {
		old = prev.ExpiresAt.UTC().Format(time.RFC3339)
	}
	cmd.IssuedAt, cmd.TTL, cmd.ExpiresAt = r.c.now().UTC(), r.TTL, time.Time{}
	out.Notes = append(out.Notes, fmt.Sprintf("forced: issued_at set to %s and ttl_ms to %d (original deadline %s)",
		cmd.IssuedAt.Format(time.RFC3339Nano), r.TTL.Milliseconds(), old))
	if unknown {
		out.Notes = append(out.Notes, "forced although the gateway may have executed the command before (reason "+r.Masker.Text(reason, cmd.Number)+")")
	}
	return encodeCommand(cmd)
}

func encodeCommand(cmd events.DisconnectCommand) (events.DisconnectCommand, []byte, error) {
	if err := cmd.Validate(); err != nil {
		return cmd, nil, &ReplayRefusedError{Reason: RefusedInvalid, Detail: "replayed command: " + err.Error(), Err: err}
	}
	b, err := json.Marshal(cmd)
	return cmd, b, err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
