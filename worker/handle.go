package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// job is one delivery of one command.
type job struct {
	msg      jetstream.Msg
	msgID    string // the Nats-Msg-Id the command was published with
	meta     *jetstream.MsgMetadata
	cmd      events.DisconnectCommand
	valid    bool      // cmd passed validation: it has a usable command_id
	deadline time.Time // zero for an invalid command
	lease    atomic.Pointer[lease]
	span     trace.Span // the delivery's; nil for an advisory's job

	attempts      int           // gateway requests sent in this delivery
	gatewayTime   time.Duration // spent in those requests
	maybeExecuted bool          // a request of this command may have reached the gateway
	rev           uint64        // the ledger revision this delivery's start (or pin) wrote (0: none)
	pin           string        // the call the command is scoped to ("" while a plain one's is unresolved)
	check         checkMark     // the last call check that passed
}

// outcome is what handle decided for a delivery; dispose carries it out.
type outcome struct {
	res      *events.Result // terminal: publish, then Ack (accepted) or Term
	store    bool           // write res to the ledger first (false when replaying it),
	rev      uint64         // over ledger revision rev only (0: only if there is no record)
	retry    time.Duration  // not terminal: NakWithDelay(retry)
	shutdown bool           // not terminal: plain Nak, no failure recorded
	err      error          // cause, for the log line
	// ensurePending: res is replayed on a redelivery; write its pending
	// record if accepted and none ever existed (see finish).
	ensurePending bool
	// quiet: res is the stored result of another stream message with the
	// same command_id (see replay): publish nothing, only Ack or Term.
	quiet bool
	seq   uint64 // with store: the stream sequence of the message deciding res
}

// process runs one delivery from start to disposal. A panic is recovered
// and the message Nak'ed: a bug must not take the worker down.
func (w *Worker) process(ctx context.Context, msg jetstream.Msg) {
	j := &job{msg: msg, msgID: msg.Headers().Get(events.HeaderMsgID)}
	ctx, j.span = w.startSpan(ctx, msg)
	defer j.span.End() // last: after the disposition
	defer func() {
		// The slot moves on while the lease key is deleted; the agent stays
		// held in this process until the deletion is done.
		if l := j.lease.Swap(nil); l != nil {
			w.releases.Go(l.release)
		}
	}()
	defer w.observeDelivery(time.Now()) // runs before the lease release: it measures up to the ack
	stop := w.keepalive(j)
	out := func() (out outcome) {
		defer func() {
			if p := recover(); p != nil {
				out = outcome{retry: time.Second, err: fmt.Errorf("panic: %v", p)}
			}
		}()
		return w.handle(ctx, j)
	}()
	stop()
	w.dispose(j, out)
}

// keepalive tells JetStream the message is in progress and renews the
// agent lease while the job runs, so AckWait and the lease TTL only expire
// for a worker that died. The returned func stops it and waits.
func (w *Worker) keepalive(j *job) (stop func()) {
	// Every LeaseTTL/8, so that a request always starts with at least
	// 5/8 of the lease TTL to run before the lease could lapse (a command
	// done in milliseconds renews nothing).
	every := min(w.cfg.AckWait/3, w.cfg.LeaseTTL/8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = j.msg.InProgress()
				if l := j.lease.Load(); l != nil {
					_ = l.renew(ctx)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// handle decides what happens to one delivery.
func (w *Worker) handle(ctx context.Context, j *job) outcome {
	meta, err := j.msg.Metadata()
	if err != nil {
		return outcome{retry: time.Second, err: err}
	}
	j.meta = meta
	j.cmd, err = events.DecodeDisconnect(j.msg.Data())
	if err == nil {
		err = w.admit(j) // Nats-Msg-Id and clock skew (admit.go)
	}
	if err != nil {
		return outcome{res: w.result(j, events.StatusRejected, err.Error(), "")}
	}
	if w.cfg.RequireCallID && j.cmd.CallID == "" {
		return outcome{res: w.result(j, events.StatusRejected, "call_id: is required by this worker (--require-call-id)", "")}
	}
	j.valid = true
	j.deadline = j.cmd.Deadline(meta.Timestamp, w.cfg.DefaultTTL)

	if !w.startable(j.deadline) {
		return w.expired(ctx, j, "deadline passed before execution")
	}
	dctx, cancel := context.WithDeadline(ctx, j.deadline.Add(-w.cfg.ExpiryGuard))
	defer cancel()
	l, err := w.leases.acquire(dctx, j.cmd.AgentID)
	if err != nil {
		if isShutdown(ctx) {
			return outcome{shutdown: true, err: err}
		}
		return w.expired(ctx, j, "deadline passed while another command held the agent")
	}
	j.lease.Store(l)
	pin := w.candidatePin(j)
	rec, rev, err := w.ledger.Start(ctx, j.cmd.CommandID, w.cfg.Instance, pin)
	if err != nil {
		return outcome{retry: time.Second, err: err}
	}
	if rec != nil && rec.State == ledger.StateDone {
		return w.replay(j, rec)
	}
	j.maybeExecuted = rec != nil // an earlier delivery started sending
	j.rev, j.pin = rev, pin
	if rec != nil && rec.CallID != "" {
		j.pin = rec.CallID // the first delivery's pin wins (ledger.start keeps it)
	}
	out := w.execute(ctx, j)
	if out.store {
		// Over this delivery's started record only (see ledger.start).
		out.rev = j.rev
	}
	return out
}

// expired ends a command whose deadline passed before it could hold its
// agent. Without the lease another delivery of it may be finishing, so the
// ledger decides: a done command replays its result, otherwise "expired"
// is stored only if the record is still the one read here. A "started"
// record means another delivery (a duplicate message, or this one's
// earlier delivery) sent a request; one whose answer is still on its way
// would store the outcome after this one and contradict a published
// "expired". So while anyone holds the agent this delivery waits for the
// ledger instead. Past the deadline no request can start (execute checks
// it), so a free agent means nothing of this command is in flight.
func (w *Worker) expired(ctx context.Context, j *job, reason string) outcome {
	rec, rev, err := w.ledger.Get(ctx, j.cmd.CommandID)
	if err != nil {
		return outcome{retry: time.Second, err: err}
	}
	switch ledger.Decide(rec) {
	case ledger.Republish:
		return w.replay(j, rec)
	case ledger.Contended:
		held, err := w.leases.held(ctx, j.cmd.AgentID)
		if err != nil {
			return outcome{retry: time.Second, err: err}
		}
		if held {
			return outcome{retry: w.cfg.LeaseTTL / 4, err: errStartedElsewhere}
		}
		j.maybeExecuted = true // that delivery may have reached the gateway
	}
	if j.pin == "" {
		// The result names the call the command meant, for a replay.
		j.pin = w.candidatePin(j)
	}
	out := w.final(j, events.StatusExpired, w.unknown(j, reason), "")
	out.rev = rev
	return out
}

// startable reports whether a gateway request may still start before deadline.
func (w *Worker) startable(deadline time.Time) bool {
	return time.Until(deadline) > w.cfg.ExpiryGuard
}

// final builds a terminal outcome that is stored in the ledger.
func (w *Worker) final(j *job, s events.Status, reason, retcode string) outcome {
	out := outcome{res: w.result(j, s, reason, retcode), store: true}
	if j.meta != nil {
		out.seq = j.meta.Sequence.Stream
	}
	return out
}

// replay is the outcome of a delivery that found its command done: the
// stored result. A delivery of the stream message whose delivery stored it
// publishes it again (that one may have died before publishing; the
// Nats-Msg-Id makes a second copy a no-op); a delivery of another message
// with the same command_id (published again after the de-duplication
// window, which no Nats-Msg-Id can cover) publishes nothing, so the
// command keeps exactly one result message while the ledger remembers it
// (DESIGN.md #9).
func (w *Worker) replay(j *job, rec *ledger.Record) outcome {
	out := outcome{res: rec.Result}
	if rec.Seq != 0 && j.meta != nil && rec.Seq != j.meta.Sequence.Stream {
		out.quiet = true
		out.err = fmt.Errorf("worker: command done by stream message %d: no second result", rec.Seq)
	}
	return out
}

func (w *Worker) result(j *job, s events.Status, reason, retcode string) *events.Result {
	r := &events.Result{
		CommandID: j.cmd.CommandID, AgentID: j.cmd.AgentID, Number: j.cmd.Number,
		Status: s, Reason: reason, RetCode: retcode, Attempts: j.attempts,
		CorrelationID: j.cmd.CorrelationID, RequestedBy: j.cmd.RequestedBy,
		CallID:   cmp.Or(j.pin, j.cmd.CallID),
		IssuedAt: j.cmd.IssuedAt, ExpiresAt: j.deadline,
		StoredAt:    storedAt(j),
		CompletedAt: time.Now().UTC(), GatewayMillis: j.gatewayTime.Milliseconds(),
	}
	if r.IssuedAt.IsZero() && j.meta != nil {
		r.IssuedAt = j.meta.Timestamp
	}
	if r.CommandID == "" { // unreadable command: use its Nats-Msg-Id, or its place in the stream
		if events.ValidCommandID(j.msgID) {
			r.CommandID = j.msgID
		} else if j.meta != nil {
			r.CommandID = "seq-" + strconv.FormatUint(j.meta.Sequence.Stream, 10)
		}
	}
	return r
}

// storedAt is when JetStream stored the command; for a replay, when its
// first run was (see events.HeaderReplayStoredAt).
func storedAt(j *job) time.Time {
	if j.meta == nil {
		return time.Time{}
	}
	if j.msg != nil && j.msg.Headers().Get(events.HeaderReplayOf) != "" {
		if t, err := time.Parse(time.RFC3339Nano, j.msg.Headers().Get(events.HeaderReplayStoredAt)); err == nil && t.Before(j.meta.Timestamp) {
			return t.UTC()
		}
	}
	return j.meta.Timestamp.UTC()
}

var errStartedElsewhere = errors.New("worker: past the deadline while another delivery of the command holds the agent; waiting for its outcome")

func isShutdown(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errShutdown)
}
