package gatewaysim

import (
	"slices"
	"strconv"
	"strings"
)

// InnerHelp asks agent helper for help on the active call (POST
// voicecall/{agentid}/innerhelp, EN:cec_07_1236). Two-party: the call is
// held (AgentEvent_Hold) and a new help call to the helper's work number
// becomes the last call (AgentEvent_Customer_Alerting, AgentEvent_Talking
// with feature 51) [C]. Three-party: the helper joins the active call
// (AgentEvent_Conference) [C].
//
// When the helper is a simulated agent that is signed in and has no active
// call, it gets its own side of the help call, with the same call ID [I]:
// AgentEvent_Ringing and AgentEvent_Talking (type "assistant"), and for
// three-party AgentEvent_Conference. Its parties are the asking agent's
// work number (and in three-party the customer). It can release only its
// own number; releasing the helper's work number on the asking side ends
// the helper's side (EN/CN:cec_07_1248) [C].
func (s *Sim) InnerHelp(agentID, helper int, threeParty bool) error {
	helperNo := strconv.Itoa(helper)
	return s.withAgent(agentID, func(a *agent) error {
		c := active(a)
		if c == nil {
			return ErrNoCall
		}
		if threeParty {
			others := slices.Clone(c.parties)
			c.parties = append(c.parties, helperNo)
			c.feature = featureThreeParty
			s.pushConferenceLocked(a, c)
			s.helperLegLocked(a, c, helper, append([]string{a.workNo}, others...))
			return nil
		}
		c.held = true
		s.pushLocked(a, EventHold, c.id)
		h := &call{id: s.newCallID(), customer: c.customer, parties: []string{helperNo},
			caller: a.workNo, called: helperNo, feature: featureHelp, began: s.now()}
		a.calls = append(a.calls, h)
		s.pushLocked(a, EventCustomerAlerting, map[string]any{
			"callid": h.id, "otherPhone": helperNo, "otherPhoneWorkno": helperNo, "type": "assistant",
		})
		s.pushLocked(a, EventTalking, talkingInfo(h, "assistant"))
		s.helperLegLocked(a, h, helper, []string{a.workNo})
		return nil
	})
}

// helperLegLocked gives simulated agent helper its side of a's call c,
// when it is signed in, free, not a itself, and c has no helper yet.
func (s *Sim) helperLegLocked(a *agent, c *call, helper int, parties []string) {
	b := s.agents[helper]
	if b == nil || b == a || c.peer != nil {
		return
	}
	s.expireIdleLocked(b, s.now())
	if !b.signedIn || active(b) != nil {
		return
	}
	hc := &call{id: c.id, parties: parties, caller: a.workNo, called: b.workNo,
		feature: c.feature, began: s.now(), helper: true}
	b.calls = append(b.calls, hc)
	c.peer, hc.peer = &leg{a: b, c: hc}, &leg{a: a, c: c}
	s.pushLocked(b, EventRinging, talkingInfo(hc, "assistant"))
	s.pushLocked(b, EventTalking, talkingInfo(hc, "assistant"))
	if c.feature == featureThreeParty {
		s.pushConferenceLocked(b, hc)
	}
}

// ConfJoin merges the most recently held call into the active call, which
// becomes one three-party call (AgentEvent_Conference). A simulated
// helper's side of the active call gets the held call's parties too. It
// fails with [ErrNoCall] without an active call and [ErrNoHeldCall]
// without a held one.
func (s *Sim) ConfJoin(agentID int) error {
	return s.withAgent(agentID, func(a *agent) error {
		c := active(a)
		if c == nil {
			return ErrNoCall
		}
		i := len(a.calls) - 2
		if i < 0 {
			return ErrNoHeldCall
		}
		h := a.calls[i]
		c.parties = slices.Concat(h.parties, c.parties)
		c.customer, c.gen, c.redial = h.customer, h.gen, h.redial
		c.feature = featureThreeParty
		a.calls = slices.Delete(a.calls, i, i+1)
		s.pushConferenceLocked(a, c)
		if p := c.peer; p != nil {
			p.c.parties = slices.Concat(h.parties, p.c.parties)
			p.c.feature = featureThreeParty
			s.pushConferenceLocked(p.a, p.c)
		}
		return nil
	})
}

func (s *Sim) pushConferenceLocked(a *agent, c *call) {
	s.pushLocked(a, EventConference, map[string]any{
		"callid": c.id, "partner": strings.Join(c.parties, ","),
	})
}
