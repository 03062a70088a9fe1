package gatewaysim

import (
	"time"

	"github.com/google/uuid"
)

// Event types raised by sessions.
const (
	EventInService       = "AgentOther_InService"
	EventShutdownService = "AgentOther_ShutdownService"
	EventReady           = "AgentState_Ready"
)

// SignIn signs agent id in with forcelogin semantics: an existing session
// is taken over and its GUIDs become invalid. An unknown agent is created.
// It returns the GUID ("<uuid>.<Node>", without "JSESSIONID=").
func (s *Sim) SignIn(id int) (guid string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	a := s.agentLocked(id, "")
	s.expireIdleLocked(a, s.now())
	return s.signInLocked(a), nil
}

// signInLocked starts a new session: the queue of the old one is dropped
// and its held polls are woken (they answer 100-006).
func (s *Sim) signInLocked(a *agent) string {
	now := s.now()
	a.session++
	a.queue = nil
	a.signal()
	a.signedIn = true
	a.loginTime = now
	a.lastPoll = now
	a.guids = nil
	guid := s.issueGUIDLocked(a, now)
	s.pushLocked(a, EventInService, nil)
	s.pushLocked(a, EventReady, nil)
	return guid
}

// signOutLocked ends the session. Its calls are released (Call_Release
// each [I]) and a pending redial is cancelled. The events, ShutdownService
// last, are still delivered to a poll that is held right now.
func (s *Sim) signOutLocked(a *agent) {
	if !a.signedIn {
		return
	}
	a.signedIn = false
	a.guids = nil
	s.releaseAllLocked(a)
	s.stopRedialLocked(a)
	s.pushLocked(a, EventShutdownService, map[string]any{"loginTime": a.loginTime.UnixMilli()})
}

// expireIdleLocked signs a out when it was not polled for NoPollSignOut.
func (s *Sim) expireIdleLocked(a *agent, now time.Time) {
	d := s.cfg.NoPollSignOut
	if d <= 0 || !a.signedIn || a.polling > 0 || now.Sub(a.lastPoll) < d {
		return
	}
	s.signOutLocked(a)
	s.signedOut.Add(1)
}

func (s *Sim) issueGUIDLocked(a *agent, now time.Time) string {
	g := uuid.NewString() + "." + s.cfg.Node
	a.guids = append(a.guids, issuedGUID{value: g, issued: now})
	return g
}

// authLocked checks the Guid header of a request for agent id. It returns
// the agent, or the retcode to answer: 000-003 (no Guid) or 100-006 (agent
// not signed in, or the GUID is unknown, expired or from an old session).
func (s *Sim) authLocked(id int, guid string) (*agent, string) {
	if guid == "" {
		return nil, rcNoPermission
	}
	a := s.agents[id]
	if a == nil {
		return nil, rcNotSignedIn
	}
	now := s.now()
	s.expireIdleLocked(a, now)
	if !a.signedIn || !s.guidValidLocked(a, guid, now) {
		return nil, rcNotSignedIn
	}
	return a, ""
}

func (s *Sim) guidValidLocked(a *agent, guid string, now time.Time) bool {
	if len(a.guids) == 0 {
		return false
	}
	if s.cfg.AuthMode != 2 {
		return a.guids[len(a.guids)-1].value == guid
	}
	for _, g := range a.guids {
		if g.value == guid && now.Before(g.issued.Add(s.cfg.GUIDTimeout)) {
			return true
		}
	}
	return false
}

// rotateLocked issues a new GUID in AUTHMODE 2 once GUIDInterval has passed
// since the current one. It returns the Set-GUID header value or "".
// Expired GUIDs are dropped.
func (s *Sim) rotateLocked(a *agent) string {
	if s.cfg.AuthMode != 2 || !a.signedIn || len(a.guids) == 0 {
		return ""
	}
	now := s.now()
	if now.Sub(a.guids[len(a.guids)-1].issued) < s.cfg.GUIDInterval {
		return ""
	}
	live := a.guids[:0]
	for _, g := range a.guids {
		if now.Before(g.issued.Add(s.cfg.GUIDTimeout)) {
			live = append(live, g)
		}
	}
	a.guids = live
	return setGUIDPrefix + s.issueGUIDLocked(a, now)
}
