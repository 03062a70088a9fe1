package poller

// What the confirmer remembers per agent (its waiting commands, the
// parties of its recent calls, its unmatched releases) and the parsing of
// release events into it. Like match.go, all of it runs under
// confirmer.mu.

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// agentTrack is what is known of one agent: its pending commands, the
// parties of its recent calls and its releases not matched yet.
type agentTrack struct {
	pending  map[string]*pendingCmd
	calls    map[string]*callParties
	order    []string // call IDs, oldest first
	releases []*releaseEvent
}

type callParties struct {
	parties  map[string]bool
	consumed map[string]bool // numbers whose release in this call confirmed a command
	ended    time.Time       // when its Call_Release was seen
}

type releaseEvent struct {
	typ, callID, number string
	at                  time.Time // ReleasedAt: gateway time, else received
	seen                time.Time // local time, for the grace
	used                bool      // a Customer_Release confirms one command
}

// track returns agent's state, creating it. The caller holds c.mu.
func (c *confirmer) track(agent int) *agentTrack {
	t, ok := c.agents[agent]
	if !ok {
		t = &agentTrack{pending: make(map[string]*pendingCmd), calls: make(map[string]*callParties)}
		c.agents[agent] = t
	}
	return t
}

// oldestWaiting returns the earliest accepted undecided command for number
// that a release in callID may confirm.
func (t *agentTrack) oldestWaiting(number, callID string) *pendingCmd {
	var best *pendingCmd
	for _, pc := range t.pending {
		if pc.out != nil || normalizeParty(pc.p.Number) != number || !sameCall(pc.p.CallID, callID) {
			continue
		}
		if best == nil || pc.p.AcceptedAt.Before(best.p.AcceptedAt) ||
			pc.p.AcceptedAt.Equal(best.p.AcceptedAt) && pc.rev < best.rev {
			best = pc
		}
	}
	return best
}

// sameCall reports whether a release in call released may confirm a
// command scoped to call want: the same call, or either one unknown. The
// call-info query and the events name a call by the same callid [I]
// (cc-gateway.md, "correlate by callid taken from Talking/Ringing or from
// calldata/{agentid}/callinfo before the disconnect").
func sameCall(want, released string) bool {
	return want == "" || released == "" || want == released
}

// call returns the parties of callID, remembering at most
// confirmCallsPerAgent calls.
func (t *agentTrack) call(callID string) *callParties {
	if cp, ok := t.calls[callID]; ok {
		return cp
	}
	cp := &callParties{parties: make(map[string]bool), consumed: make(map[string]bool)}
	t.calls[callID] = cp
	t.order = append(t.order, callID)
	if len(t.order) > confirmCallsPerAgent {
		delete(t.calls, t.order[0])
		t.order = t.order[1:]
	}
	return cp
}

// keep holds an unmatched release for the grace.
func (t *agentTrack) keep(rel *releaseEvent) {
	t.releases = append(t.releases, rel)
	if len(t.releases) > confirmReleasesPerAgent {
		t.releases = t.releases[1:]
	}
}

// prune forgets releases older than grace and calls ended more than
// confirmCallMemory ago.
func (t *agentTrack) prune(now time.Time, grace time.Duration) {
	t.releases = slices.DeleteFunc(t.releases, func(r *releaseEvent) bool { return now.Sub(r.seen) > grace })
	t.order = slices.DeleteFunc(t.order, func(id string) bool {
		cp := t.calls[id]
		if !cp.ended.IsZero() && now.Sub(cp.ended) > confirmCallMemory {
			delete(t.calls, id)
			return true
		}
		return false
	})
}

func (cp *callParties) add(n string) {
	if n = normalizeParty(n); n != "" {
		cp.parties[n] = true
	}
}

// releaseTime is when the gateway says the release happened, else when the
// poller received it.
func releaseTime(ev events.AgentEvent, now time.Time) time.Time {
	switch {
	case !ev.GeneratedAt.IsZero():
		return ev.GeneratedAt
	case !ev.ReceivedAt.IsZero():
		return ev.ReceivedAt
	}
	return now
}

// parseReleaseContent reads an event's content tolerantly: a bare string
// (Call_Release's callid) or an object whose keys are lowercased and whose
// string or number values are kept as text.
func parseReleaseContent(raw json.RawMessage) (string, map[string]string) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s), nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return "", nil
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		var n json.Number
		switch {
		case json.Unmarshal(v, &s) == nil:
			out[strings.ToLower(k)] = strings.TrimSpace(s)
		case json.Unmarshal(v, &n) == nil:
			out[strings.ToLower(k)] = n.String()
		}
	}
	return "", out
}

// normalizeParty trims a party and drops the a/A prefix the gateway puts
// before agent IDs in Ringing.
func normalizeParty(n string) string {
	n = strings.TrimSpace(n)
	if len(n) > 1 && (n[0] == 'a' || n[0] == 'A') && strings.Trim(n[1:], "0123456789") == "" {
		return n[1:]
	}
	return n
}
