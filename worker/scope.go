package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/metrics"
)

// The call scope of a command (DESIGN.md #8). The gateway releases a
// number from the agent's last call, and customers call back within
// seconds, so a command executed late or twice must not hang up the next
// call. A command is scoped to a call: its call_id, or for a plain
// command the call that was the agent's last call when the command was
// stored ("pinned", recorded in the ledger's started record before the
// first request). Before every attempt the worker checks that this call
// is still the agent's last call and the number one of its parties, from
// the poller's live call state when it is fresh, else from the gateway's
// call-info query; if not, nothing is sent. What no check can close is
// the gateway's own latency between the check and the release.

// candidatePin returns the call to write into the started record: the
// command's call_id, or the call a plain command means according to the
// fresh call state ("" when the state cannot say; scope resolves it from
// the gateway before the first request).
func (w *Worker) candidatePin(j *job) string {
	if j.cmd.CallID != "" || w.cfg.SkipCallCheck {
		return j.cmd.CallID
	}
	st, ok := w.calls.current(j.cmd.AgentID, time.Now(), w.cfg.CallStateMaxAge)
	if !ok {
		return ""
	}
	pin, _ := pinFromState(st, pinTime(j), w.cfg.CallStartMargin)
	return pin
}

// pinTime is the time a plain command's call is resolved at: when it was
// stored, or for a replay when its first run was (storedAt). A replay
// that does not say (an older dlq replay) is taken at its issued_at when
// that is earlier, as before.
func pinTime(j *job) time.Time {
	t := storedAt(j)
	if j.msg != nil && j.msg.Headers().Get(events.HeaderReplayOf) != "" && j.msg.Headers().Get(events.HeaderReplayStoredAt) == "" &&
		!j.cmd.IssuedAt.IsZero() && j.cmd.IssuedAt.Before(t) {
		t = j.cmd.IssuedAt
	}
	return t
}

// scope runs before every attempt. nil: send. A *scopeError: do not send
// (unknown ones may be tried again within the deadline). Other errors
// are NATS failures writing the pin.
func (w *Worker) scope(ctx context.Context, j *job, guid string) error {
	j.check = checkMark{}
	if w.cfg.SkipCallCheck {
		return nil
	}
	now := time.Now()
	st, ok := w.calls.current(j.cmd.AgentID, now, w.cfg.CallStateMaxAge)
	if !ok {
		return w.scopeFromGateway(ctx, j, guid, st)
	}
	// A "yes" of the state is trusted while it is fresh; a "no" only once
	// every event from before the command was stored has had
	// CallStateLag to reach it (the event of a call that just began may
	// still be on its way): until then the gateway decides.
	settled := now.Sub(pinTime(j)) >= w.cfg.CallStateLag
	if j.pin == "" {
		pin, serr := pinFromState(st, pinTime(j), w.cfg.CallStartMargin)
		switch {
		case serr != nil && settled:
			return serr
		case serr != nil:
			return w.scopeFromGateway(ctx, j, guid, st)
		}
		if err := w.pinCall(ctx, j, pin); err != nil {
			return err
		}
	}
	serr := checkState(st, j.pin, j.cmd.Number)
	switch {
	case serr == nil:
		j.check = checkMark{metrics.CheckState, st.ObservedAt, time.Now()}
		return nil
	case settled:
		return serr
	}
	return w.scopeFromGateway(ctx, j, guid, st)
}

// scopeFromGateway checks the call with the gateway's call-info query
// (the agent's current call [I]: the query reports one call; a held call
// during two-party help is not distinguished from an ended one, so both
// say the command's call is not the agent's). st is the stale call
// state, if any: it can still tell when a call began.
func (w *Worker) scopeFromGateway(ctx context.Context, j *job, guid string, st *events.CallState) error {
	start := time.Now()
	info, err := w.gw.CallInfo(ctx, j.cmd.AgentID, guid)
	w.cfg.Metrics.GatewayRequest(metrics.OpCallInfo, time.Since(start), err)
	if err != nil {
		return &scopeError{events.ReasonCallUnknown, "no fresh call state and the call-info query failed: " + errText(err), err}
	}
	if info.CallID == "" {
		if j.pin != "" {
			return callEnded("call %s is not up: the agent has no call", j.pin)
		}
		return callEnded("the agent has no call")
	}
	if j.pin == "" {
		began := info.Began
		if c := stFind(st, info.CallID); began.IsZero() && c != nil {
			began = c.Since
		}
		switch {
		case began.IsZero():
			return &scopeError{reason: events.ReasonCallUnknown, detail: fmt.Sprintf("no fresh call state and the gateway does not say when call %s began", info.CallID)}
		case began.After(pinTime(j).Add(w.cfg.CallStartMargin)):
			return callEnded("no call of the agent when the command was stored is still up (call %s began after)", info.CallID)
		}
		if err := w.pinCall(ctx, j, info.CallID); err != nil {
			return err
		}
	}
	switch {
	case info.CallID != j.pin:
		if c := stFind(st, j.pin); c != nil && !info.Held {
			return &scopeError{reason: events.ReasonCallMismatch, detail: fmt.Sprintf("call %s is not the agent's current call (%s is)", j.pin, info.CallID)}
		}
		return callEnded("call %s is not the agent's call (the gateway reports %s)", j.pin, info.CallID)
	case !slices.Contains(info.Parties, j.cmd.Number):
		return &scopeError{reason: events.ReasonNotAParty, detail: fmt.Sprintf("the number is not a party of call %s", j.pin)}
	}
	j.check = checkMark{metrics.CheckCallInfo, start, time.Now()}
	return nil
}

// checkMark is a passed call check: its source (metrics.CheckState or
// CheckCallInfo), when the information it relied on was true (the call
// state's observed_at; the call-info query's sending, as the gateway
// answered it at some moment after), and when it passed. The disconnect
// sent on it observes the window (metrics call_check_window_seconds).
type checkMark struct {
	source string
	asOf   time.Time
	at     time.Time
}

func stFind(st *events.CallState, id string) *events.Call {
	if st == nil {
		return nil
	}
	return st.Find(id)
}

// pinCall records the call a plain command is scoped to in the delivery's
// started record before its first request.
func (w *Worker) pinCall(ctx context.Context, j *job, call string) error {
	rev, err := w.ledger.Pin(ctx, j.cmd.CommandID, w.cfg.Instance, call, j.rev)
	if err != nil {
		return err
	}
	j.pin, j.rev = call, rev
	return nil
}

// scopeOutcome ends a command whose call check said not to send.
// permanent: an answer ended the retries; otherwise the deadline did, and
// a check that could not be made then leaves the command expired (as a
// gateway that fails until the deadline does), with the reason saying so.
func (w *Worker) scopeOutcome(j *job, se *scopeError, permanent bool) outcome {
	switch {
	case se.unknown() && !permanent:
		return w.final(j, events.StatusExpired, w.unknown(j, "deadline passed while the call could not be checked: "+se.Error()), gateway.RetCodeOf(se.cause))
	case se.unknown() && gateway.Classify(se.cause) == gateway.ClassSession:
		return w.final(j, events.StatusFailed, w.unknown(j, events.ReasonSessionInvalid+": "+se.Error()), gateway.RetCodeOf(se.cause))
	case se.unknown():
		return w.final(j, events.StatusFailed, w.unknown(j, se.Error()), gateway.RetCodeOf(se.cause))
	case j.maybeExecuted && se.reason != events.ReasonCallMismatch:
		// An earlier request may have released the party: as with 200-023.
		return w.final(j, events.StatusAccepted, events.ReasonAlreadyReleased+": "+se.detail, "")
	}
	return w.final(j, events.StatusFailed, w.unknown(j, se.Error()), "")
}

// asScope returns the *scopeError in err or last, if any.
func asScope(err, last error) (*scopeError, bool) {
	var se *scopeError
	if errors.As(err, &se) || errors.As(last, &se) {
		return se, true
	}
	return nil, false
}
