package poller

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// sessionWrite is the outcome of [Poller.writeSession].
type sessionWrite struct {
	stored bool
	rev    uint64          // revision written (a delete: a lower bound), or of the entry found
	other  *events.Session // a usable session of another sign-in that was left alone
}

// errConflict: the session changed between read and write twice in a row.
var errConflict = errors.New("poller: session changed concurrently")

// writeSession changes the agent's session, but only while it is still the
// session this loop polls (its GUID is one the loop knows): a session
// replaced by a new sign-in, invalidated or deleted meanwhile is left
// alone. The write is a compare-and-set on the revision read; a conflict
// is re-read and retried once. change nil deletes the session.
func (p *Poller) writeSession(ctx context.Context, st *agentState, change func(*events.Session)) (sessionWrite, error) {
	key := strconv.Itoa(st.agent)
	for range 2 {
		e, err := p.sessions.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return sessionWrite{}, nil
		}
		if err != nil {
			return sessionWrite{}, err
		}
		var s events.Session
		if json.Unmarshal(e.Value(), &s) != nil || !s.Usable() {
			return sessionWrite{rev: e.Revision()}, nil
		}
		if !st.knows(s.GUID) {
			return sessionWrite{rev: e.Revision(), other: &s}, nil
		}
		var rev uint64
		if change == nil {
			err = p.sessions.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
			rev = e.Revision() + 1
		} else {
			change(&s)
			data, _ := json.Marshal(s) // a Session always encodes
			rev, err = p.sessions.Update(ctx, key, data, e.Revision())
		}
		if err == nil {
			return sessionWrite{stored: true, rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return sessionWrite{}, err
		}
	}
	return sessionWrite{}, errConflict
}

// writeSessionRetry is writeSession retried with backoff on NATS errors
// until it succeeds or ctx ends.
func (p *Poller) writeSessionRetry(ctx context.Context, st *agentState, change func(*events.Session)) (sessionWrite, error) {
	var w sessionWrite
	op := func() error {
		var err error
		w, err = p.writeSession(ctx, st, change)
		if err != nil && p.js.Conn().IsClosed() {
			return backoff.Permanent(err)
		}
		return err
	}
	err := backoff.Retry(op, backoff.WithContext(p.newBackoff(), ctx))
	return w, err
}

// forgetSession records in the registry view that the session is gone up
// to rev, so no loop restarts for it before the watch catches up.
func (p *Poller) forgetSession(agent int, rev uint64) {
	p.reg.set(agent, regEntry{rev: rev})
}

// storeRotation stores a GUID the gateway rotated to (AUTHMODE 2) and
// makes it the GUID of the next poll. When the store fails it is retried
// before the next poll; the new GUID is used meanwhile (the gateway would
// not hand it out again). It returns stopDeregistered when the session is
// gone, or "".
func (p *Poller) storeRotation(ctx context.Context, st *agentState, guid string) string {
	octx, cancel := context.WithTimeout(ctx, p.cfg.opTimeout())
	defer cancel()
	note := sessionNote{ev: events.SessionEvent{AgentID: st.agent, Kind: events.SessionRotated}, guid: guid}
	p.feed.expect(note) // kept on an error: the write may be stored, and is retried with the same GUID
	w, err := p.writeSession(octx, st, func(s *events.Session) {
		s.GUID, s.Node, s.AuthMode, s.UpdatedAt = guid, nodeOf(guid), 2, time.Now().UTC()
	})
	if err == nil && !w.stored {
		p.feed.forget(note)
	}
	switch {
	case err != nil:
		st.use(guid)
		st.pending = true
		p.log.Warn().Err(err).Int(keyAgentID, st.agent).Msg("rotated guid not stored, will retry")
		return ""
	case w.other != nil: // a new sign-in replaced the session this GUID belongs to
		st.adopt(w.other.GUID, w.rev)
		return ""
	case !w.stored:
		p.forgetSession(st.agent, w.rev)
		return stopDeregistered
	}
	st.use(guid)
	st.pending, st.rev = false, w.rev
	p.reg.set(st.agent, regEntry{guid: guid, rev: w.rev, usable: true})
	p.cfg.Metrics.GUIDRotated()
	p.log.Debug().Int(keyAgentID, st.agent).Msg("session guid rotated")
	return ""
}

// nodeOf returns the ".AgentGatewayN" part of a GUID, without the dot.
func nodeOf(guid string) string {
	if i := strings.LastIndexByte(guid, '.'); i >= 0 {
		return guid[i+1:]
	}
	return ""
}

// invalidate marks the session invalid after a session error and returns
// stopInvalid, or "" when the registry holds a new session meanwhile (the
// loop goes on with it).
func (p *Poller) invalidate(ctx context.Context, st *agentState, perr error) string {
	rc := gateway.RetCodeOf(perr)
	reason := "retcode " + rc
	if rc == "" {
		reason = "session error"
		var ge *gateway.Error
		if errors.As(perr, &ge) && ge.StatusCode != 0 {
			reason = "http " + strconv.Itoa(ge.StatusCode)
		}
	}
	note := sessionNote{ev: events.SessionEvent{AgentID: st.agent, Kind: events.SessionInvalidated, Reason: reason, RetCode: rc}}
	p.feed.expect(note)
	w, err := p.writeSessionRetry(ctx, st, func(s *events.Session) {
		s.State, s.Reason, s.UpdatedAt = events.SessionInvalid, reason, time.Now().UTC()
	})
	if !w.stored {
		p.feed.forget(note)
	}
	if why := p.afterEnd(st, w, err); why != "" || w.other != nil {
		return why
	}
	p.log.Warn().Int(keyAgentID, st.agent).Str(keyRetCode, rc).Str(keyReason, reason).Msg("session invalid")
	return stopInvalid
}

// signedOut deletes the session after AgentOther_ShutdownService and
// returns stopSignedOut, or "" when the registry holds a new session.
func (p *Poller) signedOut(ctx context.Context, st *agentState) string {
	note := sessionNote{ev: events.SessionEvent{AgentID: st.agent, Kind: events.SessionSignedOut, Reason: "shutdown_service"}}
	p.feed.expect(note)
	w, err := p.writeSessionRetry(ctx, st, nil)
	if !w.stored {
		p.feed.forget(note)
	}
	if why := p.afterEnd(st, w, err); why != "" || w.other != nil {
		return why
	}
	p.log.Warn().Int(keyAgentID, st.agent).Msg("agent signed out")
	return stopSignedOut
}

// afterEnd applies the outcome of a write that ends the session: it returns
// "" when the write was stored or a new session was adopted, else why the
// loop stops.
func (p *Poller) afterEnd(st *agentState, w sessionWrite, err error) string {
	switch {
	case err != nil:
		p.log.Warn().Err(err).Int(keyAgentID, st.agent).Msg("session not updated")
		return stopShutdown
	case w.other != nil:
		st.adopt(w.other.GUID, w.rev)
		return ""
	case !w.stored:
		p.forgetSession(st.agent, w.rev)
		return stopDeregistered
	}
	p.forgetSession(st.agent, w.rev)
	return ""
}
