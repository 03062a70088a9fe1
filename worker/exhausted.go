package worker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/nats-io/nats.go/jetstream"
)

// exhausted turns the server's max-deliveries advisories into results. The
// last delivery of a command normally ends in a result (dispose makes any
// retry a failure then); this covers a command whose every delivery died
// with its worker, so that it, too, gets exactly one result.
func (w *Worker) exhausted(ctx context.Context, cons jetstream.Consumer, commands jetstream.Stream) {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(w.cfg.FetchWait))
		if err != nil {
			_ = sleep(ctx, w.cfg.FetchWait)
			continue
		}
		for msg := range batch.Messages() {
			if err := w.handleExhausted(ctx, msg, commands); err != nil {
				w.log.Warn().Err(err).Msg("max-deliveries advisory not handled")
				_ = msg.NakWithDelay(time.Second)
				continue
			}
			_ = msg.Ack()
		}
	}
}

func (w *Worker) handleExhausted(ctx context.Context, msg jetstream.Msg, commands jetstream.Stream) error {
	var adv struct {
		StreamSeq uint64 `json:"stream_seq"`
	}
	if err := json.Unmarshal(msg.Data(), &adv); err != nil || adv.StreamSeq == 0 {
		return nil // not an advisory we understand: nothing to do
	}
	raw, err := commands.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // aged out of the stream
	}
	if err != nil {
		return err
	}
	j := &job{msgID: raw.Header.Get(events.HeaderMsgID), meta: &jetstream.MsgMetadata{
		Timestamp: raw.Time, Sequence: jetstream.SequencePair{Stream: raw.Sequence}}}
	var out outcome
	if j.cmd, err = events.DecodeDisconnect(raw.Data); err != nil {
		out = outcome{res: w.result(j, events.StatusRejected, err.Error(), "")}
	} else {
		j.valid, j.deadline = true, j.cmd.Deadline(raw.Time, w.cfg.DefaultTTL)
		rec, rev, err := w.ledger.Get(ctx, j.cmd.CommandID)
		if err != nil {
			return err
		}
		switch ledger.Decide(rec) {
		case ledger.Republish:
			// Published again: the delivery that stored it may have died
			// before publishing, or before its pending record was written
			// (the Nats-Msg-Id makes a second copy a no-op; the pending
			// record is written only if none ever existed).
			out = w.replay(j, rec)
			out.ensurePending = true
		case ledger.Contended: // as in expired: wait out a delivery in flight
			held, err := w.leases.held(ctx, j.cmd.AgentID)
			if err != nil {
				return err
			}
			if held {
				return errStartedElsewhere
			}
			fallthrough
		default:
			out = w.final(j, events.StatusFailed, events.ReasonMaxDeliveries+": every delivery ended without an outcome", "")
			out.rev = rev
		}
	}
	// No delivery span here: the result and dead letter carry the command's
	// own trace context.
	if !out.quiet { // see finish
		if err := w.record(tracing.Extract(ctx, raw.Header), out, raw.Data, events.ReplayMsgIDSuffix(raw.Header.Get(events.HeaderReplayOf))); err != nil {
			return err
		}
	}
	w.observeOutcome(out, nil)
	w.logOutcome(j, out, nil)
	return nil
}
