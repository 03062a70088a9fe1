package poller

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// callEv builds an agent event of 101 as the poller converts it.
func callEv(typ string, content any) events.AgentEvent {
	raw, _ := json.Marshal(content)
	ev := events.AgentEvent{AgentID: 101, Type: typ, Content: raw}
	ev.CallID, ev.Number = contentFields(typ, raw)
	return ev
}

// summary renders the calls as "id:phase:party,party" strings.
func summary(s events.CallState) []string {
	var out []string
	for _, c := range s.Calls {
		parties := slices.Clone(c.Parties)
		slices.Sort(parties)
		line := c.CallID + ":" + string(c.Phase) + ":"
		for i, p := range parties {
			if i > 0 {
				line += ","
			}
			line += p
		}
		out = append(out, line)
	}
	return out
}

func endedIDs(s events.CallState) []string {
	var out []string
	for _, e := range s.Ended {
		out = append(out, e.CallID)
	}
	return out
}

// The book follows a call through ringing, talking, hold, a two-party
// help call, the conference that merges them, the parties leaving and a
// redial, reading contents tolerantly (callId casing, a/A prefixes,
// string or number values) and never listing the agent's own work number.
func TestCallBookFollowsEvents(t *testing.T) {
	b := newCallBook(101)
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		ev      events.AgentEvent
		changed bool
		calls   []string
		ended   []string
	}{
		{callEv("AgentState_Ready", nil), false, nil, nil},
		{callEv(eventRinging, map[string]any{"caller": "5550101", "called": "a101", "callId": "c1"}), true,
			[]string{"c1:ringing:5550101"}, nil},
		{callEv(eventTalking, map[string]any{"CALLER": "5550101", "called": "101", "callid": "c1", "type": "main"}), true,
			[]string{"c1:talking:5550101"}, nil},
		{callEv(eventHold, "c1"), true, []string{"c1:held:5550101"}, nil},
		{callEv(eventAlerting, map[string]any{"callid": "c2", "otherPhone": "A102", "otherPhoneWorkno": 102, "type": "assistant"}), true,
			[]string{"c1:held:5550101", "c2:ringing:102"}, nil},
		{callEv(eventTalking, map[string]any{"caller": "101", "called": "102", "callid": "c2", "type": "assistant"}), true,
			[]string{"c1:held:5550101", "c2:help:102"}, nil},
		{callEv(eventConference, map[string]any{"callid": "c2", "partner": "5550101,102,101"}), true,
			[]string{"c2:three_party:102,5550101"}, []string{"c1"}},
		{callEv(events.EventCustomerRelease, map[string]any{"CallID": "c2", "NUMBER": "102"}), true,
			[]string{"c2:three_party:5550101"}, []string{"c1"}},
		{callEv(events.EventCustomerRelease, map[string]any{"callid": "c2", "number": "999"}), false,
			[]string{"c2:three_party:5550101"}, []string{"c1"}},
		{callEv(events.EventCustomerRelease, map[string]any{"callid": "c2", "number": "5550101"}), true,
			[]string{"c2:three_party:"}, []string{"c1"}},
		{callEv(events.EventCallRelease, "c2"), true, nil, []string{"c1", "c2"}},
		{callEv(eventRinging, map[string]any{"caller": "5550101", "called": "101", "callid": "c3"}), true,
			[]string{"c3:ringing:5550101"}, []string{"c1", "c2"}},
		{callEv(eventTalking, map[string]any{"caller": "5550101", "called": "101", "callid": "c3"}), true,
			[]string{"c3:talking:5550101"}, []string{"c1", "c2"}},
		{callEv(eventPhoneRelease, map[string]any{"phoneState": 3}), true, nil, []string{"c1", "c2", "c3"}},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Second)
		if got := b.apply(s.ev, at); got != s.changed {
			t.Errorf("step %d %s: changed = %v, want %v", i, s.ev.Type, got, s.changed)
		}
		st := b.snapshot()
		if got := summary(st); !slices.Equal(got, s.calls) {
			t.Errorf("step %d %s: calls = %q, want %q", i, s.ev.Type, got, s.calls)
		}
		if got := endedIDs(st); !slices.Equal(got, s.ended) {
			t.Errorf("step %d %s: ended = %q, want %q", i, s.ev.Type, got, s.ended)
		}
	}
	if !b.complete {
		t.Error("book not complete after AgentOther_PhoneRelease")
	}
	// Since is the first event's receive time: c3 rang at step 11.
	b.apply(callEv(eventTalking, map[string]any{"callid": "c4", "caller": "1"}), t0.Add(time.Hour))
	if c := b.state.LastCall(); c == nil || !c.Since.Equal(t0.Add(time.Hour)) {
		t.Errorf("last call = %+v, want c4 since %v", c, t0.Add(time.Hour))
	}
}

// Ended keeps the newest MaxEndedCalls, newest last, each once.
func TestCallBookEndedBounded(t *testing.T) {
	b := newCallBook(101)
	at := time.Now()
	for i := range events.MaxEndedCalls + 3 {
		id := "c" + string(rune('a'+i))
		b.apply(callEv(eventTalking, map[string]any{"callid": id, "caller": "1"}), at)
		b.apply(callEv(events.EventCallRelease, id), at)
		b.apply(callEv(events.EventCallRelease, id), at) // a duplicate release
	}
	got := endedIDs(b.snapshot())
	if len(got) != events.MaxEndedCalls || got[len(got)-1] != "c"+string(rune('a'+events.MaxEndedCalls+2)) || got[0] != "cd" {
		t.Fatalf("ended = %q", got)
	}
}

// A successor continues from a complete final state (Polling false, an
// ObservedAt) and only keeps the ended calls of anything else.
func TestCallBookAdopt(t *testing.T) {
	obs := time.Now().UTC()
	calls := []events.Call{{CallID: "c1", Parties: []string{"5550101"}, Phase: events.CallTalking}}
	ended := []events.EndedCall{{CallID: "c0", EndedAt: obs}}
	for _, tc := range []struct {
		name     string
		prev     events.CallState
		complete bool
	}{
		{"final", events.CallState{Polling: false, ObservedAt: obs, Calls: calls, Ended: ended}, true},
		{"owner died", events.CallState{Polling: true, ObservedAt: obs, Calls: calls, Ended: ended}, false},
		{"never complete", events.CallState{Polling: false, Calls: calls, Ended: ended}, false},
	} {
		b := newCallBook(101)
		b.adopt(tc.prev)
		s := b.snapshot()
		if b.complete != tc.complete || len(s.Ended) != 1 || (len(s.Calls) == 1) != tc.complete ||
			s.ObservedAt.IsZero() == tc.complete {
			t.Errorf("%s: complete %v, state %+v", tc.name, b.complete, s)
		}
	}
}
