package gatewaysim

import "slices"

// disconnectLocked applies the rules of POST disconnect/{number}
// (EN/CN:cec_07_1248) and releases number. It returns the retcode and the
// call the number was released from (nil when nothing was executed):
//
//   - only a party of the agent's last call can be released [C]; one in an
//     earlier (held) call gets 200-204 [C], one in no call 200-024 [C:
//     meaning], and an agent without a call 200-023 [C: meaning];
//   - the agent's own number (its soft-phone number from sign-in, or its
//     work number when it bound none [I]) makes the agent leave its last
//     call ("to leave yourself, use your own soft-phone number" [C]);
//   - the helper's side of an inner-help call can release only its own
//     number ("the helped party can only hang up itself" [C]); any other
//     party of it gets 000-002 [I: no code is documented].
func (s *Sim) disconnectLocked(a *agent, number string) (string, *call) {
	c := last(a)
	switch {
	case c == nil:
		return rcNoCall, nil
	case a.owns(number) && !c.has(number):
		s.leaveLocked(a, c, number)
		return rcOK, c
	case c.helper && c.has(number):
		return rcBadParam, nil
	case c.has(number):
		s.releaseLocked(a, c, number)
		return rcOK, c
	}
	for _, x := range a.calls {
		if x.has(number) {
			return rcNotInLastCall, nil
		}
	}
	return rcNotInCall, nil
}

// owns reports whether number is the agent's own: its soft-phone number,
// or its work number when it signed in without one [I].
func (a *agent) owns(number string) bool {
	if a.phone != "" {
		return number == a.phone
	}
	return number == a.workNo
}

// releaseLocked removes number from c and raises Customer_Release. When c
// has a peer (inner help), the release reaches the peer's side too: the
// peer agent's own work number ends the peer's side, a party both sides
// share leaves both [I]. A call left with only the agent ends with
// Call_Release; when it was the agent's only call, a redial may follow.
func (s *Sim) releaseLocked(a *agent, c *call, number string) {
	c.parties = slices.DeleteFunc(c.parties, func(p string) bool { return p == number })
	s.pushLocked(a, EventCustomerRelease, map[string]any{"callid": c.id, "number": number})
	if p := c.peer; p != nil {
		switch {
		case p.a.workNo == number:
			s.unlink(c)
			s.endLocked(p.a, p.c, false)
		case p.c.has(number):
			p.c.parties = slices.DeleteFunc(p.c.parties, func(x string) bool { return x == number })
			s.pushLocked(p.a, EventCustomerRelease, map[string]any{"callid": p.c.id, "number": number})
		}
	}
	if len(c.parties) == 0 {
		s.endLocked(a, c, !c.helper)
	}
}

// leaveLocked makes agent a leave c by releasing its own number: a gets
// Customer_Release with that number and Call_Release. A peer agent sees
// a's work number leave and keeps talking to the other parties, if any;
// without a peer the call ends for everybody [I].
func (s *Sim) leaveLocked(a *agent, c *call, own string) {
	s.pushLocked(a, EventCustomerRelease, map[string]any{"callid": c.id, "number": own})
	p := c.peer
	s.unlink(c)
	c.parties = nil
	s.endLocked(a, c, p == nil && !c.helper)
	if p != nil && p.c.has(a.workNo) {
		s.releaseLocked(p.a, p.c, a.workNo)
	}
}

// unlink separates c from its peer's side.
func (s *Sim) unlink(c *call) {
	if c.peer != nil {
		c.peer.c.peer = nil
		c.peer = nil
	}
}

// endLocked removes c from the agent's calls and raises Call_Release. It
// ends the peer's side as well when it is still linked. With mayRedial, a
// redial of c's customer may follow when the agent has no call left.
func (s *Sim) endLocked(a *agent, c *call, mayRedial bool) {
	if p := c.peer; p != nil {
		s.unlink(c)
		s.endLocked(p.a, p.c, false)
	}
	wasLast := last(a) == c
	a.calls = slices.DeleteFunc(a.calls, func(x *call) bool { return x == c })
	c.ended = s.now()
	if l := last(a); wasLast && l != nil {
		l.lastSince = c.ended
	}
	a.lastEnded = c
	s.pushLocked(a, EventCallRelease, c.id)
	if mayRedial && len(a.calls) == 0 {
		s.scheduleRedialLocked(a, c.customer)
	}
}

// releaseAllLocked ends every call of a signed-out agent (forcelogout, the
// no-poll sign-out): Call_Release for each [I], and a peer agent sees a's
// work number leave. No redial follows.
func (s *Sim) releaseAllLocked(a *agent) {
	for len(a.calls) > 0 {
		c := a.calls[len(a.calls)-1]
		p := c.peer
		s.unlink(c)
		s.endLocked(a, c, false)
		if p != nil && p.c.has(a.workNo) {
			s.releaseLocked(p.a, p.c, a.workNo)
		}
	}
}
