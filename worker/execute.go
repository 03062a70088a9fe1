package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/cenkalti/backoff/v4"
)

// execute sends the disconnect with backoff until it succeeds, fails for
// good, or the command's deadline (less ExpiryGuard) comes. No request
// starts after that deadline, and none outlives the agent lease.
func (w *Worker) execute(ctx context.Context, j *job) outcome {
	guid, ok := w.guid(j)
	if !ok {
		if j.pin == "" {
			j.pin = w.candidatePin(j) // the result names the call the command meant, for a replay
		}
		// An earlier delivery's request may have reached the gateway
		// before the session went: its outcome stays unknown.
		if why, bad := w.sessions.rejected(j.cmd.AgentID); bad {
			return w.final(j, events.StatusFailed, w.unknown(j, events.ReasonSessionInvalid+": the gateway rejected the agent's GUID ("+why+"); sign the agent in again"), "")
		}
		return w.final(j, events.StatusFailed, w.unknown(j, events.ReasonNoSession+": no session registered for the agent"), "")
	}
	dctx, cancel := context.WithDeadline(ctx, j.deadline.Add(-w.cfg.ExpiryGuard))
	defer cancel()
	a := &attempts{guid: guid, b: w.backoff(time.Until(j.deadline))}
	op := func() error {
		l := j.lease.Load()
		if dctx.Err() != nil {
			return backoff.Permanent(dctx.Err())
		}
		if !time.Now().Before(l.until()) {
			return backoff.Permanent(errLeaseLost)
		}
		if g, ok := w.guid(j); ok {
			a.guid = g // the registry may have rotated it since the last attempt
		}
		cctx, ccancel := w.requestContext(dctx, j, l)
		err := w.scope(cctx, j, a.guid)
		ccancel()
		if err != nil {
			a.last = err
			return w.onScope(dctx, j, a, err)
		}
		// The disconnect gets a deadline of its own, from the lease as it
		// is now: a slow call-info query must not eat its time.
		if dctx.Err() != nil || !time.Now().Before(l.until()) {
			return backoff.Permanent(first(dctx.Err(), errLeaseLost))
		}
		rctx, rcancel := w.requestContext(dctx, j, l)
		defer rcancel()
		start := time.Now()
		j.attempts++
		rctx, span := w.startRequest(rctx, j.attempts)
		err = w.gw.Disconnect(rctx, j.cmd.AgentID, j.cmd.Number, a.guid)
		endRequest(span, err)
		took := time.Since(start)
		j.gatewayTime += took
		w.cfg.Metrics.GatewayRequest(metrics.OpDisconnect, took, err)
		if gateway.RetCodeOf(err) == "" || gateway.Classify(err) == gateway.ClassSuccess {
			w.calls.releasedAt(j.cmd.AgentID, start) // released, or maybe: not refused
			w.cfg.Metrics.CallChecked(j.check.source, j.check.asOf, j.check.at, start.Add(took))
		}
		a.last = err
		return w.onAnswer(dctx, j, a, err, true)
	}
	err := backoff.Retry(op, backoff.WithContext(a.b, dctx))
	return w.conclude(ctx, j, err, a.last, a.permanent)
}

// attempts is the retry state of one delivery's requests.
type attempts struct {
	guid           string
	b              *hintBackOff
	last           error // the last request's (or call check's) error
	limited        int
	sessionRetried bool
	permanent      bool // an answer ended the retries
}

func (a *attempts) giveUp(err error) error {
	a.permanent = true
	return backoff.Permanent(err)
}

// onScope decides what a call check that said not to send does: a call
// that is over ends the command (never retried); a check that could not
// be made is tried again, unless the call-info query's answer ends the
// retries as it would a disconnect's (a session error that does not heal,
// a permanent error).
func (w *Worker) onScope(ctx context.Context, j *job, a *attempts, err error) error {
	se, ok := asScope(err, nil)
	switch {
	case !ok:
		return err // the pin could not be stored: try again
	case !se.unknown():
		return a.giveUp(err)
	case se.cause != nil && w.onAnswer(ctx, j, a, se.cause, false) != nil && a.permanent:
		return backoff.Permanent(err)
	}
	return err
}

// onAnswer classifies a gateway error (the disconnect's when sent, else
// the call-info query's) into the next step of the retries: nil ends
// them with success, a backoff.Permanent with the error, any other error
// retries.
func (w *Worker) onAnswer(ctx context.Context, j *job, a *attempts, err error, sent bool) error {
	switch gateway.Classify(err) {
	case gateway.ClassSuccess, gateway.ClassAlreadyDone:
		if !sent {
			return errors.New("worker: call-info query answered success with an error")
		}
		return nil
	case gateway.ClassTransient:
		if sent && gateway.RetCodeOf(err) == "" {
			j.maybeExecuted = true // no answer: the request may have been executed
		}
		a.b.hint = gateway.RetryAfterOf(err)
		return err
	case gateway.ClassLimited:
		if a.limited++; a.limited > w.cfg.MaxLimited {
			return a.giveUp(err)
		}
		return err
	case gateway.ClassSession:
		if a.sessionRetried || j.cmd.GUID != "" {
			return a.giveUp(err)
		}
		a.sessionRetried = true
		if g := w.sessions.waitChange(ctx, j.cmd.AgentID, a.guid, w.cfg.SessionWait); g != "" {
			a.guid = g
			return err
		}
		return a.giveUp(err)
	default:
		return a.giveUp(err)
	}
}

// requestContext bounds one gateway request: by the command's deadline
// and the agent lease as they are when it starts. A request once sent is
// never cancelled by shutdown (only by its own deadline): its outcome is
// recorded before the worker exits, and the agent's lease is freed only
// after it.
func (w *Worker) requestContext(dctx context.Context, j *job, l *lease) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.WithoutCancel(dctx), earliest(j.deadline.Add(-w.cfg.ExpiryGuard), l.until()))
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// conclude maps the end of the retry loop to an outcome. Retries that end
// without a permanent answer ended because the deadline came (or the next
// wait would pass it): the command expired.
func (w *Worker) conclude(ctx context.Context, j *job, err, last error, permanent bool) outcome {
	rc := gateway.RetCodeOf(last)
	if se, ok := asScope(err, last); ok && !isShutdown(ctx) && !errors.Is(err, errLeaseLost) {
		return w.scopeOutcome(j, se, permanent)
	}
	switch {
	case err == nil && last == nil:
		return w.final(j, events.StatusAccepted, "", "0")
	case err == nil: // already done (200-023 / 200-024)
		if j.maybeExecuted {
			return w.final(j, events.StatusAccepted, events.ReasonAlreadyReleased, rc)
		}
		return w.final(j, events.StatusFailed, last.Error(), rc)
	case isShutdown(ctx):
		return outcome{shutdown: true, err: err}
	case errors.Is(err, errLeaseLost):
		return outcome{retry: w.cfg.LeaseTTL / 4, err: err}
	case !permanent:
		reason := "deadline passed before execution"
		if last != nil {
			reason = fmt.Sprintf("deadline passed after %d attempts: %v", j.attempts, last)
		}
		return w.final(j, events.StatusExpired, w.unknown(j, reason), rc)
	case gateway.Classify(last) == gateway.ClassSession:
		return w.final(j, events.StatusFailed, w.unknown(j, events.ReasonSessionInvalid+": "+err.Error()), rc)
	default:
		return w.final(j, events.StatusFailed, w.unknown(j, err.Error()), rc)
	}
}

// unknown marks the reason of a command that ends without success although
// a request of it may have reached the gateway: it may have been executed.
func (w *Worker) unknown(j *job, reason string) string {
	if j.maybeExecuted {
		return events.ReasonOutcomeUnknown + ": " + reason
	}
	return reason
}

// guid returns the GUID to send for the job's agent: the command's own, or
// the registry's current one.
func (w *Worker) guid(j *job) (string, bool) {
	if j.cmd.GUID != "" {
		return j.cmd.GUID, true
	}
	return w.sessions.lookup(j.cmd.AgentID)
}

// hintBackOff is an exponential backoff that waits at least as long as the
// gateway's Retry-After hint, when the last answer carried one.
type hintBackOff struct {
	*backoff.ExponentialBackOff
	hint time.Duration
}

func (b *hintBackOff) NextBackOff() time.Duration {
	next := b.ExponentialBackOff.NextBackOff()
	if next != backoff.Stop && b.hint > next {
		next = b.hint
	}
	b.hint = 0
	return next
}

// backoff builds one backoff per command, every field set: the library's
// default MaxElapsedTime of 15 minutes would outlive any hang-up.
func (w *Worker) backoff(maxElapsed time.Duration) *hintBackOff {
	return &hintBackOff{ExponentialBackOff: &backoff.ExponentialBackOff{
		InitialInterval:     w.cfg.InitialInterval,
		RandomizationFactor: w.cfg.RandomizationFactor,
		Multiplier:          w.cfg.Multiplier,
		MaxInterval:         w.cfg.MaxInterval,
		MaxElapsedTime:      maxElapsed,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}}
}
