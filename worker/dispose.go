package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Log keys, fixed across the code base.
const (
	keyCommandID = "command_id"
	keyAgentID   = "agent_id"
	keyNumber    = "number" // always masked
	keyAttempt   = "attempt"
	keyOutcome   = "outcome"
	keyRetcode   = "retcode"
	keyDelivery  = "delivery"
	keyReason    = "reason"
	keyDelay     = "delay"
)

// dispose is the one place that acknowledges a message. A terminal outcome
// is stored in the ledger, published as a result (and, unless accepted,
// copied to the dead-letter stream), then Ack'ed (accepted) or Term'ed. A
// failure on the way Naks instead, and the redelivery replays the stored
// result under the same Nats-Msg-Id. Non-terminal outcomes Nak, turned into
// a failure on the last allowed delivery so that no command goes without
// a result.
func (w *Worker) dispose(j *job, out outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = j.traceContext(ctx)
	if out.res == nil && j.valid && j.meta != nil && j.meta.NumDelivered >= uint64(w.cfg.MaxDeliver) {
		out = w.lastDelivery(ctx, j, out)
	}
	var err error
	switch {
	case out.res != nil:
		err = w.finish(ctx, j, out)
		if err != nil {
			out = outcome{retry: time.Second, err: err}
			err = j.msg.NakWithDelay(out.retry)
		}
	case out.shutdown:
		err = j.msg.Nak()
	default:
		err = j.msg.NakWithDelay(out.retry)
	}
	w.observeOutcome(out, err)
	traceOutcome(j, out, err)
	w.logOutcome(j, out, err)
}

// lastDelivery turns the retry of a command's last allowed delivery into
// its end, so that no command goes without a result. The ledger decides,
// as in expired: a done record (stored by another delivery meanwhile) is
// replayed, never overwritten; a "started" one this delivery did not
// write, whose agent another delivery holds, is left to that delivery
// (Nak: the server's max-deliveries advisory follows, and exhausted waits
// the same way); otherwise "failed: max_deliveries" is stored by
// compare-and-set over the record this delivery wrote, or else read here
// (docs/model/ledger.pml checks these rules).
func (w *Worker) lastDelivery(ctx context.Context, j *job, out outcome) outcome {
	if errors.Is(out.err, errStartedElsewhere) {
		return out
	}
	rec, rev, err := w.ledger.Get(ctx, j.cmd.CommandID)
	if err != nil {
		return out // Nak: the advisory decides
	}
	switch ledger.Decide(rec) {
	case ledger.Republish:
		return w.replay(j, rec)
	case ledger.Contended:
		if j.rev != 0 {
			// This delivery's own record, unless another took it over
			// since (this one lost the agent): then the compare-and-set
			// fails and the advisory decides.
			rev = j.rev
			break
		}
		held, err := w.leases.held(ctx, j.cmd.AgentID)
		if err != nil {
			return out
		}
		if held {
			return outcome{retry: out.retry, err: errStartedElsewhere}
		}
	}
	failed := w.final(j, events.StatusFailed, events.ReasonMaxDeliveries+": "+errText(out.err), "")
	failed.rev = rev
	return failed
}

// finish stores, publishes and acknowledges a terminal outcome.
func (w *Worker) finish(ctx context.Context, j *job, out outcome) error {
	// A result replayed from the ledger on a redelivery: the delivery that
	// stored it may have failed to write the pending record (record writes
	// the two at once), so write it unless it ever existed.
	out.ensurePending = !out.store && j.meta != nil && j.meta.NumDelivered > 1
	// A quiet outcome is another message's result: published already, or
	// to be by that message's own delivery.
	if !out.quiet {
		if err := w.record(ctx, out, j.msg.Data(), events.ReplayMsgIDSuffix(j.msg.Headers().Get(events.HeaderReplayOf))); err != nil {
			return err
		}
	}
	if out.res.Status == events.StatusAccepted {
		return j.msg.Ack()
	}
	return j.msg.TermWithReason(oneLine(out.res.Reason))
}

// record makes a terminal result durable and visible: the ledger (when
// store), the result stream and, unless accepted, a dead-letter copy of the
// command's original payload. Each publication carries a Nats-Msg-Id derived
// from the command_id, so doing it again after a crash duplicates nothing;
// a replayed dead letter's carry replay (see [events.ReplayMsgIDSuffix]) too.
//
// The writes that do not depend on each other go out together, one round
// trip each step: the result is published only after the ledger holds it
// (and, if accepted, the pending record exists), so a published result is
// never contradicted by a re-execution; the dead letter goes with the result.
func (w *Worker) record(ctx context.Context, out outcome, payload []byte, replay string) error {
	res := out.res
	// One write of each step runs on this goroutine, whose stack has grown
	// already: a new one grows its own on the publish ack's JSON decoding.
	var g errgroup.Group
	if res.Status == events.StatusAccepted && (out.store || out.ensurePending) {
		g.Go(func() error { return w.expectRelease(ctx, res, !out.store) })
	}
	var err error
	if out.store { // always over the revision the delivery read or wrote
		err = w.ledger.DoneAt(ctx, res, out.rev, out.seq)
	}
	if err := first(err, g.Wait()); err != nil {
		return err
	}
	if res.Status != events.StatusAccepted {
		g.Go(func() error { return w.deadLetter(ctx, payload, res, replay) })
	}
	return first(w.publishResult(ctx, res, replay), g.Wait())
}

// first returns the first of errs that is not nil.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// expectRelease records an accepted disconnect as pending, so the poller
// can confirm it with the release event the gateway raises (or report it
// unconfirmed after ConfirmWithin). With ifNever it writes only if the key
// has no history at all: a record the poller already settled (deleted) is
// not brought back.
func (w *Worker) expectRelease(ctx context.Context, res *events.Result, ifNever bool) error {
	p := events.Pending{
		CommandID: res.CommandID, AgentID: res.AgentID, Number: res.Number, CorrelationID: res.CorrelationID, CallID: res.CallID,
		IssuedAt: res.IssuedAt, AcceptedAt: res.CompletedAt, Deadline: res.CompletedAt.Add(w.cfg.ConfirmWithin),
		Traceparent: tracing.Traceparent(ctx),
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	key := events.PendingKey(p.AgentID, p.CommandID)
	if ifNever {
		// Revision 0: only if the key has no message, not even a delete
		// marker (kept for the bucket's TTL, an hour).
		_, err = w.pending.Update(ctx, key, b, 0)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) { // 10071, or 10164 on replicated streams
			err = nil
		}
	} else {
		_, err = w.pending.Put(ctx, key, b)
	}
	if err != nil {
		return fmt.Errorf("pending: %w", err)
	}
	return nil
}

func (w *Worker) publishResult(ctx context.Context, res *events.Result, replay string) error {
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.ResultSubject(res.Status))
	m.Data = data
	m.Header.Set(events.HeaderMsgID, events.ResultMsgID(res.CommandID)+replay)
	m.Header.Set(events.HeaderCommandID, res.CommandID)
	m.Header.Set(events.HeaderStatus, string(res.Status))
	if res.CorrelationID != "" {
		m.Header.Set(events.HeaderCorrelationID, res.CorrelationID)
	}
	tracing.Inject(ctx, m.Header)
	_, err = w.js.PublishMsg(ctx, m)
	return err
}

// deadLetter copies the original command, without its GUID override
// ([redactGUID]), to the dead-letter stream with the reason in a header.
func (w *Worker) deadLetter(ctx context.Context, payload []byte, res *events.Result, replay string) error {
	m := nats.NewMsg(events.SubjectDeadLetter)
	m.Data = redactGUID(payload)
	m.Header.Set(events.HeaderMsgID, "dlq-"+res.CommandID+replay)
	m.Header.Set(events.HeaderCommandID, res.CommandID)
	m.Header.Set(events.HeaderStatus, string(res.Status))
	m.Header.Set(events.HeaderReason, oneLine(res.Reason))
	tracing.Inject(ctx, m.Header)
	_, err := w.js.PublishMsg(ctx, m)
	return err
}

// logOutcome writes the one log line of a delivery. The number is masked and
// gateway text that echoes it is masked too; the GUID is never in any field.
func (w *Worker) logOutcome(j *job, out outcome, ackErr error) {
	var ev *zerolog.Event
	outcomeName := "retry"
	switch {
	case ackErr != nil:
		ev = w.log.Error().AnErr("ack_error", ackErr)
	case out.res != nil && out.res.Status == events.StatusAccepted:
		ev = w.log.Info()
	case out.res != nil:
		ev = w.log.Warn()
	case out.shutdown:
		ev, outcomeName = w.log.Info(), "shutdown"
	default:
		ev = w.log.Warn()
	}
	masked := events.MaskNumber(j.cmd.Number)
	mask := func(s string) string {
		if j.cmd.Number == "" {
			return s
		}
		return strings.ReplaceAll(s, j.cmd.Number, masked)
	}
	if out.res != nil {
		outcomeName = string(out.res.Status)
		ev = ev.Str(keyCommandID, out.res.CommandID).Str(keyRetcode, out.res.RetCode)
		if out.res.Reason != "" {
			ev = ev.Str(keyReason, mask(out.res.Reason))
		}
	} else {
		ev = ev.Str(keyCommandID, j.cmd.CommandID).Dur(keyDelay, out.retry)
	}
	if out.err != nil {
		ev = ev.Str("error", mask(out.err.Error()))
	}
	if j.meta != nil {
		ev = ev.Uint64(keyDelivery, j.meta.NumDelivered)
	}
	ev.Int(keyAgentID, j.cmd.AgentID).Str(keyNumber, masked).Int(keyAttempt, j.attempts).
		Str(keyOutcome, outcomeName).Msg("command disposed")
}

// oneLine makes s safe for a NATS header: one line of valid UTF-8, at
// most 256 bytes. Control characters (CR, LF, NUL, NEL, ...), Unicode line
// and paragraph separators and invisible format characters (bidi
// overrides, zero-width ones) become spaces; invalid UTF-8 becomes U+FFFD.
// A cut never splits a character.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > 256 {
		cut := 256
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func errText(err error) string {
	if err == nil {
		return "no outcome"
	}
	return err.Error()
}
