package worker

import (
	"context"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/ledger"
)

// The pure rules of the call scope: which call a plain command means, and
// whether a call is the agent's last call with the number in it.
func TestCallScopeRules(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	a := events.Call{CallID: "A", Parties: []string{"5550101"}, Phase: events.CallHeld, Since: t0}
	h := events.Call{CallID: "H", Parties: []string{"102"}, Phase: events.CallHelp, Since: t0.Add(10 * time.Second)}
	b := events.Call{CallID: "B", Parties: []string{"5550101"}, Phase: events.CallTalking, Since: t0.Add(20 * time.Second)}
	margin := 500 * time.Millisecond

	pins := []struct {
		name   string
		calls  []events.Call
		stored time.Time
		pin    string
		reason string
	}{
		{"during the call", []events.Call{a}, t0.Add(time.Second), "A", ""},
		{"within the margin of its start", []events.Call{a}, t0.Add(-400 * time.Millisecond), "A", ""},
		{"before the call began", []events.Call{a}, t0.Add(-time.Second), "", events.ReasonCallEnded},
		{"stored during A, B is up now", []events.Call{b}, t0.Add(time.Second), "", events.ReasonCallEnded},
		{"stored during A, A held for help", []events.Call{a, h}, t0.Add(time.Second), "A", ""},
		{"stored during help", []events.Call{a, h}, t0.Add(11 * time.Second), "H", ""},
		{"no call", nil, t0, "", events.ReasonCallEnded},
	}
	for _, tc := range pins {
		pin, serr := pinFromState(&events.CallState{Calls: tc.calls}, tc.stored, margin)
		if pin != tc.pin || (serr == nil) != (tc.reason == "") || serr != nil && serr.reason != tc.reason {
			t.Errorf("%s: pin %q, %v; want %q, %q", tc.name, pin, serr, tc.pin, tc.reason)
		}
	}

	checks := []struct {
		name   string
		st     events.CallState
		call   string
		number string
		reason string
	}{
		{"the last call, a party", events.CallState{Calls: []events.Call{a}}, "A", "5550101", ""},
		{"the last call, not a party", events.CallState{Calls: []events.Call{a}}, "A", "5550199", events.ReasonNotAParty},
		{"held behind a help call", events.CallState{Calls: []events.Call{a, h}}, "A", "5550101", events.ReasonCallMismatch},
		{"ended, redialed", events.CallState{Calls: []events.Call{b}, Ended: []events.EndedCall{{CallID: "A", EndedAt: t0}}}, "A", "5550101", events.ReasonCallEnded},
		{"unknown call", events.CallState{Calls: []events.Call{b}}, "X", "5550101", events.ReasonCallEnded},
		{"no call", events.CallState{}, "A", "5550101", events.ReasonCallEnded},
	}
	for _, tc := range checks {
		serr := checkState(&tc.st, tc.call, tc.number)
		if (serr == nil) != (tc.reason == "") || serr != nil && serr.reason != tc.reason {
			t.Errorf("%s: %v; want %q", tc.name, serr, tc.reason)
		}
	}

	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		st   *events.CallState
		want bool
	}{
		{nil, false},
		{&events.CallState{Polling: true, ObservedAt: now.Add(-time.Second)}, true},
		{&events.CallState{Polling: true, ObservedAt: now.Add(-6 * time.Second)}, false},
		{&events.CallState{Polling: false, ObservedAt: now}, false},
	} {
		if got := fresh(tc.st, now, 5*time.Second); got != tc.want {
			t.Errorf("fresh(%+v) = %v, want %v", tc.st, got, tc.want)
		}
	}
}

// A takeover keeps the call the first delivery pinned: a later delivery
// that would resolve another call (or none) cannot re-scope the command.
func TestLedgerTakeoverKeepsThePinnedCall(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(kv)
	if _, _, err := l.Start(ctx, "pinned", "worker-a", "A"); err != nil {
		t.Fatal(err)
	}
	rec, _, err := l.Start(ctx, "pinned", "worker-b", "B")
	if err != nil || rec == nil || rec.CallID != "A" {
		t.Fatalf("takeover found %+v, %v; want the record pinned to A", rec, err)
	}
	got, _, err := l.Get(ctx, "pinned")
	if err != nil || got.Owner != "worker-b" || got.CallID != "A" {
		t.Fatalf("after the takeover: %+v, %v; want worker-b's record, still pinned to A", got, err)
	}
	// An unpinned record (the call was not known yet) takes the new pin.
	_, rev, err := l.Start(ctx, "late-pin", "worker-a", "")
	if err != nil {
		t.Fatal(err)
	}
	next, err := l.Pin(ctx, "late-pin", "worker-a", "A", rev)
	if err != nil || next <= rev {
		t.Fatalf("pin: %d, %v", next, err)
	}
	if _, err := l.Pin(ctx, "late-pin", "worker-a", "B", rev); err == nil {
		t.Fatal("a pin over a stale revision was stored")
	}
}
