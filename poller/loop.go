package poller

import (
	"context"
	"slices"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/cenkalti/backoff/v4"
)

// Reasons a loop stops, logged as "reason".
const (
	stopShutdown     = "shutdown"
	stopHandOff      = "hand_off"
	stopLeaseLost    = "lease_lost"
	stopDeregistered = "deregistered"
	stopInvalid      = "session_invalid"
	stopSignedOut    = "signed_out"
	stopPublish      = "publish_failed"
)

// maxKnown bounds the GUID lineage a loop remembers.
const maxKnown = 8

// agentState is what one loop knows about its agent's session.
type agentState struct {
	agent   int
	guid    string   // GUID of the next poll
	rev     uint64   // newest registry revision taken into account
	known   []string // GUIDs of this session (polled with or rotated to), oldest first
	pending bool     // guid was rotated to but not yet stored
}

// knows reports whether g belongs to the session this loop polls.
func (st *agentState) knows(g string) bool { return slices.Contains(st.known, g) }

// use makes g the GUID of the next poll, remembering it in the lineage.
func (st *agentState) use(g string) {
	st.guid = g
	if !st.knows(g) {
		st.known = append(st.known, g)
		if len(st.known) > maxKnown {
			st.known = st.known[1:]
		}
	}
}

// adopt switches to another session (a new sign-in): its GUID starts a
// new lineage.
func (st *agentState) adopt(g string, rev uint64) {
	st.guid, st.known, st.rev, st.pending = g, []string{g}, rev, false
}

// refresh takes newer registry state into account. It reports false when
// the agent is no longer registered.
func (st *agentState) refresh(r *registry) bool {
	e, ok := r.get(st.agent)
	switch {
	case !ok:
		return false
	case e.rev <= st.rev:
		return true
	case !e.usable:
		return false
	case !st.knows(e.guid):
		st.adopt(e.guid, e.rev)
	default:
		st.rev = e.rev
	}
	return true
}

// agentRun is one agent's poll loop while its lease is held.
type agentRun struct {
	p       *Poller
	ctx     context.Context // Run's: ends on shutdown
	work    context.Context // for polls, publishes and session writes
	l       *agentLoop
	ls      *lease
	calls   *callTracker
	st      agentState
	bo      *backoff.ExponentialBackOff
	attempt int // consecutive failed polls
}

// pollLoop polls the agent until it should stop and returns why.
func (p *Poller) pollLoop(ctx, work context.Context, l *agentLoop, ls *lease, calls *callTracker) string {
	r := &agentRun{p: p, ctx: ctx, work: work, l: l, ls: ls, calls: calls, st: agentState{agent: l.agent}, bo: p.newBackoff()}
	return r.run()
}

func (r *agentRun) run() string {
	for {
		if why := r.stopReason(); why != "" {
			return why
		}
		if !r.st.refresh(r.p.reg) {
			return stopDeregistered
		}
		if r.st.pending {
			if why := r.p.storeRotation(r.work, &r.st, r.st.guid); why != "" {
				return why
			}
		}
		if !r.awaitLease() {
			continue // stopReason says why
		}
		poll, err := r.pollOnce()
		receivedAt := time.Now()
		var why string
		if err != nil {
			why = r.onPollError(err)
		} else {
			why = r.onPoll(poll, receivedAt)
		}
		if why != "" {
			return why
		}
	}
}

// pollOnce runs one long poll. Its ctx is detached from Run's (a hand-off
// or shutdown never cancels a poll: the gateway may be about to answer with
// an event it then considers delivered) and bounded by PollTimeout.
func (r *agentRun) pollOnce() (gateway.Poll, error) {
	ctx, cancel := context.WithTimeout(r.work, r.p.cfg.PollTimeout)
	defer cancel()
	start := time.Now()
	r.calls.pollStarted(start)
	poll, err := r.p.gw.PollEvent(ctx, r.st.agent, r.st.guid)
	r.calls.pollEnded()
	r.p.cfg.Metrics.GatewayRequest(metrics.OpPoll, time.Since(start), err)
	return poll, err
}

// onPoll handles a successful poll: store a rotated GUID, then republish
// the event and poll again at once, or pause PollGap after an empty poll.
func (r *agentRun) onPoll(poll gateway.Poll, receivedAt time.Time) string {
	r.attempt = 0
	r.bo.Reset()
	if poll.SetGUID != "" && poll.SetGUID != r.st.guid {
		if why := r.p.storeRotation(r.work, &r.st, poll.SetGUID); why != "" {
			return why
		}
	}
	if poll.Event != nil {
		return r.p.onEvent(r.work, &r.st, r.calls, poll.Event, receivedAt)
	}
	r.pause(r.p.cfg.PollGap)
	return ""
}

// onPollError handles a failed poll: a session error invalidates the
// session (and stops the loop unless the registry meanwhile holds a new
// session); any other error is retried after a backoff.
func (r *agentRun) onPollError(err error) string {
	class := gateway.Classify(err)
	if class == gateway.ClassSession {
		return r.p.invalidate(r.work, &r.st, err)
	}
	r.attempt++
	d := r.bo.NextBackOff()
	r.p.log.Warn().Err(err).Int(keyAgentID, r.st.agent).Str(keyRetCode, gateway.RetCodeOf(err)).
		Str("class", class.String()).Int(keyAttempt, r.attempt).Dur(keyDelay, d).Msg("poll failed")
	r.pause(d)
	return ""
}

// stopReason says why the loop must not start another poll, or "".
func (r *agentRun) stopReason() string {
	switch {
	case r.ctx.Err() != nil:
		return stopShutdown
	case r.l.stopping():
		return stopHandOff
	case r.ls.isLost():
		return stopLeaseLost
	}
	return ""
}

// awaitLease waits until the lease is certainly held for at least
// PollTimeout, so the poll cannot outlive it. It reports false when the
// loop must stop instead.
func (r *agentRun) awaitLease() bool {
	for time.Until(r.ls.until()) < r.p.cfg.PollTimeout {
		select {
		case <-r.ctx.Done():
			return false
		case <-r.l.stop:
			return false
		case <-r.ls.lost:
			return false
		case <-r.p.leases.Load().renewedChan():
		case <-time.After(r.p.cfg.renewEvery()):
		}
	}
	return true
}

// pause waits d, or less when the loop must stop.
func (r *agentRun) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
	case <-r.l.stop:
	case <-r.ls.lost:
	case <-t.C:
	}
}

// newBackoff builds the error backoff of one loop or one publish, every
// field explicit: no elapsed-time limit (an agent is polled as long as it
// is registered and owned).
func (p *Poller) newBackoff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.cfg.InitialBackoff,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         p.cfg.MaxBackoff,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b
}
