package gatewaysim

import "time"

// scheduleRedialLocked lets customer call agent a again after RedialAfter
// (demo mode). The new call rings (AgentEvent_Ringing) and is answered
// (AgentEvent_Talking) at once, unless by then the agent signed out, signed
// in anew, has another active call, or the simulator was closed.
func (s *Sim) scheduleRedialLocked(a *agent, customer string) {
	d := s.cfg.RedialAfter
	if d <= 0 || s.closed || customer == "" {
		return
	}
	session := a.session
	var t *time.Timer
	// The callback takes s.mu before it reads t, and t is assigned while
	// s.mu is held here, so the read cannot race with the assignment.
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.timers, t)
		if s.closed || !a.signedIn || a.session != session {
			return
		}
		_, _ = s.startCallLocked(a, customer, true) // ErrBusy: agent is on another call
	})
	s.timers[t] = struct{}{}
}
