package gatewaysim

import "time"

// Redials: customers call back within seconds of a release (the reason a
// disconnect is scoped to a call, DESIGN.md guarantee 8). A redialed call
// is a new call with a new ID and the customer's next generation.

// SetRedialAfter changes Config.RedialAfter at run time: when an agent's
// last call ends, its customer calls again after d. 0 (or less) disables
// the automatic redial. Redials already pending keep their delay.
func (s *Sim) SetRedialAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redialAfter = max(d, 0)
}

// RedialAfter returns the current automatic redial delay; 0 when off.
func (s *Sim) RedialAfter() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redialAfter
}

// Redial makes customer call the signed-in agent again now, whatever the
// redial delay: AgentEvent_Ringing, then AgentEvent_Talking of a new call
// (auto-answer). customer "" means the customer of the agent's most
// recently ended call ([ErrNoCustomer] when there is none). A pending
// automatic redial of the agent is cancelled. It fails with [ErrBusy]
// when the agent has an active call.
func (s *Sim) Redial(agentID int, customer string) (callID string, err error) {
	err = s.withAgent(agentID, func(a *agent) error {
		if customer == "" {
			if a.lastEnded == nil || a.lastEnded.customer == "" {
				return ErrNoCustomer
			}
			customer = a.lastEnded.customer
		}
		if !validNumber(customer) {
			return ErrBadNumber
		}
		c, err := s.startCallLocked(a, customer, true, true)
		if err != nil {
			return err
		}
		s.stopRedialLocked(a)
		callID = c.id
		return nil
	})
	return callID, err
}

// scheduleRedialLocked lets customer call agent a again after the redial
// delay. The new call rings (AgentEvent_Ringing) and is answered
// (AgentEvent_Talking) at once, unless by then the agent signed out, signed
// in anew, has another active call, or the simulator was closed. A newer
// schedule replaces a pending one.
func (s *Sim) scheduleRedialLocked(a *agent, customer string) {
	d := s.redialAfter
	if d <= 0 || s.closed || customer == "" {
		return
	}
	s.stopRedialLocked(a)
	session := a.session
	var t *time.Timer
	// The callback takes s.mu before it reads t, and t is assigned while
	// s.mu is held here, so the read cannot race with the assignment.
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.timers, t)
		if a.redialTimer != t {
			return // cancelled or replaced after it fired
		}
		a.redialTimer = nil
		if s.closed || !a.signedIn || a.session != session {
			return
		}
		_, _ = s.startCallLocked(a, customer, true, true) // ErrBusy: agent is on another call
	})
	s.timers[t] = struct{}{}
	a.redialTimer = t
}

// stopRedialLocked cancels the agent's pending automatic redial.
func (s *Sim) stopRedialLocked(a *agent) {
	if t := a.redialTimer; t != nil {
		t.Stop()
		delete(s.timers, t)
		a.redialTimer = nil
	}
}
