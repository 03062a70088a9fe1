package poller

// An agent's live calls, derived from its events in order. This is the
// in-memory state machine behind [events.CallState]; callwrite.go stores
// it. Nothing here waits on anything.

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// Gateway event types the call book reads besides the release events.
const (
	eventRinging      = "AgentEvent_Ringing"
	eventAlerting     = "AgentEvent_Customer_Alerting"
	eventTalking      = "AgentEvent_Talking"
	eventHold         = "AgentEvent_Hold"
	eventConference   = "AgentEvent_Conference"
	eventCallOutFail  = "AgentEvent_Call_Out_Fail"
	eventInsideFail   = "AgentEvent_Inside_Call_Fail"
	eventPhoneRelease = "AgentOther_PhoneRelease"
	eventInService    = "AgentOther_InService"
)

// callBook is one agent's calls as its events tell.
//
// complete says whether the book reflects every event of the agent's
// session so far: true once the loop adopted a complete hand-off record,
// saw the session start (AgentOther_InService: a session starts with no
// call) or saw every call end (AgentOther_PhoneRelease,
// AgentOther_ShutdownService). A loop that took an agent over without
// knowing the calls it already had starts incomplete: it keeps the calls
// it sees, but state.ObservedAt stays zero, so nobody trusts them.
type callBook struct {
	workNo   string // the agent's own work number, never a party
	state    events.CallState
	complete bool
}

func newCallBook(agent int) *callBook {
	return &callBook{workNo: strconv.Itoa(agent), state: events.CallState{AgentID: agent, Calls: []events.Call{}}}
}

// apply takes one event received at at and reports whether it changed the
// calls. Events that say nothing about calls change nothing.
func (b *callBook) apply(ev events.AgentEvent, at time.Time) bool {
	str, obj := parseReleaseContent(ev.Content)
	callID := cmp.Or(ev.CallID, obj["callid"], str)
	changed := true
	switch ev.Type {
	case eventRinging, eventAlerting:
		c := b.call(callID, at)
		if c != nil && c.Phase == "" {
			c.Phase = events.CallRinging
		}
		changed = c != nil && b.addParties(c, obj["caller"], obj["called"], obj["otherphone"], obj["otherphoneworkno"])
	case eventTalking:
		changed = b.talking(callID, obj, at)
	case eventHold:
		changed = b.setPhase(b.call(callID, at), events.CallHeld)
	case eventConference:
		changed = b.conference(callID, obj["partner"], at)
	case events.EventCustomerRelease:
		changed = b.partyLeft(callID, normalizeParty(cmp.Or(ev.Number, obj["number"])))
	case events.EventCallRelease, eventCallOutFail, eventInsideFail:
		changed = callID != "" && b.end(callID, at)
	case eventPhoneRelease, eventShutdownService, eventInService:
		b.endAll(at)
		b.complete = true
	default:
		return false
	}
	if changed {
		b.state.LastEvent, b.state.LastEventAt = ev.Type, at.UTC()
	}
	return changed
}

// call returns the call with id, appending it as the agent's newest (last)
// call when it is new. An event without a call ID names no call: nil.
func (b *callBook) call(id string, at time.Time) *events.Call {
	if id == "" {
		return nil
	}
	if c := b.state.Find(id); c != nil {
		return c
	}
	b.state.Calls = append(b.state.Calls, events.Call{CallID: id, Parties: []string{}, Since: at.UTC()})
	return &b.state.Calls[len(b.state.Calls)-1]
}

// talking applies AgentEvent_Talking: the call is connected; type
// "assistant" marks a help call to another agent.
func (b *callBook) talking(id string, obj map[string]string, at time.Time) bool {
	c := b.call(id, at)
	if c == nil {
		return false
	}
	phase := events.CallTalking
	if strings.EqualFold(obj["type"], "assistant") {
		phase = events.CallHelp
	}
	p := b.setPhase(c, phase)
	return b.addParties(c, obj["caller"], obj["called"]) || p
}

func (b *callBook) setPhase(c *events.Call, phase events.CallPhase) bool {
	if c == nil || c.Phase == phase {
		return false
	}
	c.Phase = phase
	return true
}

// addParties adds the numbers (an a/A prefix dropped) that are not the
// agent's own work number and not parties yet.
func (b *callBook) addParties(c *events.Call, numbers ...string) bool {
	added := false
	for _, n := range numbers {
		if n = normalizeParty(n); n != "" && n != b.workNo && !c.HasParty(n) {
			c.Parties = append(c.Parties, n)
			added = true
		}
	}
	return added
}

// conference applies AgentEvent_Conference: the call's parties are now
// the partner list, and a call whose parties all joined it (the held call
// confjoin merged in) is gone: it counts as ended, so a command scoped to
// it is not executed in the merged call.
func (b *callBook) conference(id, partner string, at time.Time) bool {
	c := b.call(id, at)
	if c == nil {
		return false
	}
	var parties []string
	for p := range strings.SplitSeq(partner, ",") {
		if p = normalizeParty(p); p != "" && p != b.workNo && !slices.Contains(parties, p) {
			parties = append(parties, p)
		}
	}
	if len(parties) > 0 {
		c.Parties = parties
	}
	c.Phase = events.CallThreeParty
	var merged []string
	for _, o := range b.state.Calls {
		if o.CallID != id && len(o.Parties) > 0 && !slices.ContainsFunc(o.Parties, func(n string) bool { return !slices.Contains(parties, n) }) {
			merged = append(merged, o.CallID)
		}
	}
	for _, m := range merged {
		b.end(m, at)
	}
	return true
}

// partyLeft applies AgentEvent_Customer_Release: number left the call (or,
// without a call ID, the newest call it is a party of). The call itself
// ends with its Call_Release.
func (b *callBook) partyLeft(id, number string) bool {
	if number == "" {
		return false
	}
	for i := len(b.state.Calls) - 1; i >= 0; i-- {
		c := &b.state.Calls[i]
		if (id == "" || c.CallID == id) && c.HasParty(number) {
			c.Parties = slices.DeleteFunc(c.Parties, func(p string) bool { return p == number })
			return true
		}
	}
	return false
}

// end removes call id and records it as ended (also a call never seen:
// the state then still tells that it ended).
func (b *callBook) end(id string, at time.Time) bool {
	b.state.Calls = slices.DeleteFunc(b.state.Calls, func(c events.Call) bool { return c.CallID == id })
	if _, ok := b.state.EndedCallAt(id); !ok {
		b.state.Ended = append(b.state.Ended, events.EndedCall{CallID: id, EndedAt: at.UTC()})
		if n := len(b.state.Ended) - events.MaxEndedCalls; n > 0 {
			b.state.Ended = slices.Delete(b.state.Ended, 0, n)
		}
	}
	return true
}

// endAll ends every call.
func (b *callBook) endAll(at time.Time) {
	for _, c := range slices.Clone(b.state.Calls) {
		b.end(c.CallID, at)
	}
}

// snapshot returns a deep copy of the state, safe to encode elsewhere.
func (b *callBook) snapshot() events.CallState {
	s := b.state
	s.Calls = make([]events.Call, len(b.state.Calls))
	for i, c := range b.state.Calls {
		c.Parties = slices.Clone(c.Parties)
		s.Calls[i] = c
	}
	s.Ended = slices.Clone(b.state.Ended)
	return s
}

// adopt continues from prev, the agent's stored state: its ended calls
// are facts whoever wrote them; its calls only when prev is complete (a
// previous owner's last write after its last poll: Polling false and an
// ObservedAt), since the events after it are still queued at the gateway
// for this loop.
func (b *callBook) adopt(prev events.CallState) {
	b.state.Ended = slices.Clone(prev.Ended)
	if prev.Polling || prev.ObservedAt.IsZero() {
		return
	}
	b.state.Calls = slices.Clone(prev.Calls)
	if b.state.Calls == nil {
		b.state.Calls = []events.Call{}
	}
	b.state.ObservedAt, b.state.LastEvent, b.state.LastEventAt = prev.ObservedAt, prev.LastEvent, prev.LastEventAt
	b.complete = true
}
