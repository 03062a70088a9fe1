package gatewaysim

import (
	"context"
	"net/http"
	"time"
)

// handlePoll serves GET agentevent/{agentid}: one event at once when the
// queue has one, else the request is held up to PollHold. A poll is the
// agent's heartbeat, and in AUTHMODE 2 its reply may carry a new GUID.
func (s *Sim) handlePoll(w http.ResponseWriter, r *http.Request) {
	id, ok := parseAgentID(r.PathValue("agentid"))
	if !ok {
		s.write(w, r, reply{retcode: rcBadParam})
		return
	}
	a, session, rc := s.startPoll(id, r.Header.Get("Guid"))
	if rc != "" {
		s.write(w, r, reply{retcode: rc})
		return
	}
	ev, rc := s.waitEvent(r.Context(), a, session)
	s.write(w, r, s.endPoll(a, session, ev, rc))
}

// startPoll authenticates a poll and marks it as held.
func (s *Sim) startPoll(id int, guid string) (*agent, uint64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rc := s.authLocked(id, guid)
	if rc != "" {
		return nil, 0, rc
	}
	s.polls.Add(1)
	a.polls++
	if a.polling > 0 {
		s.concurrentPolls.Add(1)
	}
	a.polling++
	a.lastPoll = s.now()
	return a, a.session, ""
}

// endPoll unmarks the poll and builds its reply, rotating the GUID when due.
func (s *Sim) endPoll(a *agent, session uint64, ev *Event, rc string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.polling--
	rep := reply{retcode: rc, event: ev, poll: true}
	if a.session != session {
		if ev == nil {
			rep.retcode = rcNotSignedIn
		}
		return rep
	}
	a.lastPoll = s.now()
	if rc == rcOK {
		rep.setGUID = s.rotateLocked(a)
	}
	return rep
}

// waitEvent returns the next event of the session, or nil after PollHold,
// when the client leaves or the simulator closes. A poll held while the
// agent signs out still gets the ShutdownService event; a poll of a
// replaced session gets 100-006.
func (s *Sim) waitEvent(ctx context.Context, a *agent, session uint64) (*Event, string) {
	t := time.NewTimer(s.cfg.PollHold)
	defer t.Stop()
	for {
		s.mu.Lock()
		if a.session != session {
			s.mu.Unlock()
			return nil, rcNotSignedIn
		}
		if ev, ok := a.pop(); ok {
			s.mu.Unlock()
			return &ev, rcOK
		}
		if !a.signedIn {
			s.mu.Unlock()
			return nil, rcNotSignedIn
		}
		wake := a.waitChan()
		s.mu.Unlock()
		select {
		case <-wake:
		case <-t.C:
			return nil, rcOK
		case <-ctx.Done():
			return nil, rcOK
		case <-s.done:
			return nil, rcOK
		}
	}
}
