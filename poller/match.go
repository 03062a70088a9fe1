package poller

// Matching of release events to pending commands, in memory. Every
// function here runs under confirmer.mu and never waits on NATS.

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// partyEvents are the gateway event types that name the parties of a call
// (caller, called, otherPhone, partner).
var partyEvents = map[string]bool{
	"AgentEvent_Talking": true, "AgentEvent_Ringing": true,
	"AgentEvent_Customer_Alerting": true, "AgentEvent_Conference": true,
}

// observe takes one event of an owned agent, in order per agent. It only
// updates memory and queues decided confirmations; it never waits on NATS.
func (c *confirmer) observe(_ context.Context, ev events.AgentEvent) {
	if !partyEvents[ev.Type] && ev.Type != events.EventCustomerRelease && ev.Type != events.EventCallRelease {
		return
	}
	str, obj := parseReleaseContent(ev.Content)
	callID := cmp.Or(ev.CallID, obj["callid"], str)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.track(ev.AgentID)
	switch ev.Type {
	case events.EventCustomerRelease:
		rel := &releaseEvent{typ: ev.Type, callID: callID, number: normalizeParty(cmp.Or(ev.Number, obj["number"])),
			at: releaseTime(ev, now), seen: now}
		c.customerRelease(t, rel)
	case events.EventCallRelease:
		c.callRelease(t, &releaseEvent{typ: ev.Type, callID: callID, at: releaseTime(ev, now), seen: now})
	default:
		if callID == "" {
			return
		}
		call := t.call(callID)
		for _, k := range []string{"caller", "called", "otherphone", "number"} {
			call.add(obj[k])
		}
		for p := range strings.SplitSeq(obj["partner"], ",") {
			call.add(p)
		}
	}
}

// customerRelease confirms the oldest waiting command for the released
// number (scoped to that call, or to none), or keeps the release for the grace. A release of a number whose
// release in that call already confirmed a command (through Call_Release)
// is the same release and is ignored.
func (c *confirmer) customerRelease(t *agentTrack, rel *releaseEvent) {
	if rel.number == "" {
		return
	}
	var call *callParties
	if rel.callID != "" {
		call = t.call(rel.callID)
		call.add(rel.number)
		if call.consumed[rel.number] {
			return
		}
	}
	if pc := t.oldestWaiting(rel.number, rel.callID); pc != nil {
		rel.used = true
		c.confirm(t, pc, rel)
		return
	}
	t.keep(rel)
}

// callRelease confirms, for each party of the call whose release has not
// confirmed a command yet, the oldest waiting command for that number: the
// fallback for numbers no Customer_Release names (an inner-help work
// number). Unused parties keep the release for the grace.
func (c *confirmer) callRelease(t *agentTrack, rel *releaseEvent) {
	call, ok := t.calls[rel.callID]
	if !ok || rel.callID == "" {
		return
	}
	call.ended = rel.seen
	open := false
	for _, n := range slices.Sorted(maps.Keys(call.parties)) {
		if call.consumed[n] {
			continue
		}
		if pc := t.oldestWaiting(n, rel.callID); pc != nil {
			c.confirm(t, pc, rel)
		} else {
			open = true
		}
	}
	if open {
		t.keep(rel)
	}
}

// matchKept matches a newly seen waiting command against the releases kept
// for the grace: Customer_Releases first (they name the number), then
// Call_Releases, oldest first.
func (c *confirmer) matchKept(t *agentTrack, pc *pendingCmd, now time.Time) {
	n := normalizeParty(pc.p.Number)
	for _, typ := range []string{events.EventCustomerRelease, events.EventCallRelease} {
		for _, rel := range t.releases {
			if rel.typ != typ || rel.used || now.Sub(rel.seen) > c.grace || !sameCall(pc.p.CallID, rel.callID) {
				continue
			}
			call := t.calls[rel.callID]
			if call != nil && call.consumed[n] {
				continue
			}
			switch {
			case typ == events.EventCustomerRelease && rel.number == n:
				rel.used = true
			case typ == events.EventCallRelease && call != nil && call.parties[n]:
			default:
				continue
			}
			c.confirm(t, pc, rel)
			return
		}
	}
}

// confirm decides pc as confirmed by rel. The caller holds c.mu.
func (c *confirmer) confirm(t *agentTrack, pc *pendingCmd, rel *releaseEvent) {
	if call := t.calls[rel.callID]; call != nil {
		call.consumed[normalizeParty(pc.p.Number)] = true
	}
	out := newConfirmation(pc.p, time.Now())
	out.Status, out.EventType, out.CallID, out.ReleasedAt = events.ConfirmationConfirmed, rel.typ, rel.callID, rel.at
	if !pc.p.IssuedAt.IsZero() && rel.at.After(pc.p.IssuedAt) {
		out.LatencyMillis = rel.at.Sub(pc.p.IssuedAt).Milliseconds()
	}
	c.decide(pc, out)
}

func newConfirmation(p events.Pending, now time.Time) *events.Confirmation {
	return &events.Confirmation{
		CommandID: p.CommandID, CorrelationID: p.CorrelationID, AgentID: p.AgentID, Number: p.Number,
		Status: events.ConfirmationUnconfirmed, IssuedAt: p.IssuedAt, AcceptedAt: p.AcceptedAt, ConfirmedAt: now,
	}
}

// decide records pc's outcome and queues it. The caller holds c.mu.
func (c *confirmer) decide(pc *pendingCmd, out *events.Confirmation) {
	pc.out = out
	c.enqueue(pc)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *confirmer) enqueue(pc *pendingCmd) {
	if !pc.queued {
		pc.queued = true
		c.outbox = append(c.outbox, pc)
	}
}

// sweep decides as unconfirmed every waiting command past its deadline of
// an agent this replica owns, and orphans (any agent) more than twice the
// grace past it; it also forgets expired releases and ended calls.
func (c *confirmer) sweep(now time.Time) {
	c.mu.Lock()
	var due []int
	for _, pc := range c.pending {
		if pc.out == nil && now.After(pc.p.Deadline) && !slices.Contains(due, pc.p.AgentID) {
			due = append(due, pc.p.AgentID)
		}
	}
	c.mu.Unlock()
	owned := make(map[int]bool, len(due))
	for _, a := range due {
		owned[a] = c.owns(a)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	waiting := 0
	for _, pc := range c.pending {
		if pc.out == nil && now.After(pc.p.Deadline) && (owned[pc.p.AgentID] || now.After(pc.p.Deadline.Add(2*c.grace))) {
			c.decide(pc, newConfirmation(pc.p, now))
		}
		if pc.out == nil {
			waiting++
		}
	}
	c.m.SetPending(waiting)
	for a, t := range c.agents {
		t.prune(now, c.grace)
		if len(t.pending) == 0 && len(t.calls) == 0 && len(t.releases) == 0 {
			delete(c.agents, a)
		}
	}
}
