package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/rs/zerolog"
)

func TestConfirmCustomerRelease(t *testing.T) {
	t.Parallel()
	logs := &testenv.SyncBuffer{}
	r := newConfirmRig(t, 5*time.Second, zerolog.New(logs), func(int) bool { return true })
	p := r.put(cfPending(101, "cmd-1", "13800001234", time.Now().Add(time.Minute)))

	ev := cfCustomerRelease(101, "1456403549-15", "13800001234")
	ev.GeneratedAt = p.IssuedAt.Add(1500 * time.Millisecond)
	r.c.observe(context.Background(), ev)

	got := r.await("cmd-1")
	r.gone(p)
	want := events.Confirmation{
		CommandID: "cmd-1", CorrelationID: "corr-cmd-1", AgentID: 101, Number: "13800001234",
		Status: events.ConfirmationConfirmed, EventType: events.EventCustomerRelease, CallID: "1456403549-15",
		IssuedAt: p.IssuedAt, AcceptedAt: p.AcceptedAt, ReleasedAt: ev.GeneratedAt, LatencyMillis: 1500,
	}
	if got.ConfirmedAt.IsZero() {
		t.Error("ConfirmedAt is zero")
	}
	got.ConfirmedAt = time.Time{}
	if !confirmationEqual(got.Confirmation, want) {
		t.Errorf("confirmation = %+v, want %+v", got.Confirmation, want)
	}
	if got.subject != events.ConfirmationSubject(events.ConfirmationConfirmed) {
		t.Errorf("subject = %q", got.subject)
	}
	for h, v := range map[string]string{
		events.HeaderMsgID: events.ConfirmationMsgID("cmd-1"), events.HeaderCommandID: "cmd-1",
		events.HeaderStatus: "confirmed", events.HeaderCorrelationID: "corr-cmd-1",
	} {
		if g := got.header.Get(h); g != v {
			t.Errorf("header %s = %q, want %q", h, g, v)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "the outcome log line", func() bool { return bytes.Contains(logs.Bytes(), []byte(`"outcome":"confirmed"`)) })
	line := string(logs.Bytes())
	for _, s := range []string{`"command_id":"cmd-1"`, `"agent_id":101`, `"number":"*******1234"`, `"latency_ms":1500`} {
		if !strings.Contains(line, s) {
			t.Errorf("log %s lacks %s", line, s)
		}
	}
	if strings.Contains(line, "13800001234") {
		t.Errorf("log holds the unmasked number: %s", line)
	}
}

func TestConfirmReleaseBeforePending(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	r := newConfirmRig(t, grace, zerolog.Nop(), func(int) bool { return true })
	r.c.observe(context.Background(), cfCustomerRelease(102, "2-1", "5550001"))
	r.c.observe(context.Background(), cfCustomerRelease(102, "2-2", "5550002")) // never gets a pending in time

	p := r.put(cfPending(102, "cmd-early", "5550001", time.Now().Add(time.Minute)))
	if got := r.await("cmd-early"); got.Status != events.ConfirmationConfirmed || got.CallID != "2-1" {
		t.Errorf("confirmation = %+v, want confirmed by call 2-1", got.Confirmation)
	}
	r.gone(p)

	// Past the grace, the second release is forgotten: a pending record for
	// its number that shows up now is not confirmed by it.
	testenv.WaitFor(t, 4*grace, "the unmatched release to expire", func() bool {
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		t := r.c.agents[102]
		return t == nil || len(t.releases) == 0
	})
	late := r.put(cfPending(102, "cmd-late", "5550002", time.Now().Add(200*time.Millisecond)))
	if got := r.await("cmd-late"); got.Status != events.ConfirmationUnconfirmed {
		t.Errorf("late pending: status %s, want unconfirmed", got.Status)
	}
	r.gone(late)
	if n := len(r.confirmations()); n != 2 {
		t.Errorf("%d commands have confirmations, want 2", n)
	}
}

func TestConfirmCallReleaseFallback(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, 5*time.Second, zerolog.Nop(), func(int) bool { return true })
	// An inner-help work number: no Customer_Release will name it.
	p := r.put(cfPending(103, "cmd-help", "70093", time.Now().Add(time.Minute)))
	r.c.observe(context.Background(), cfTalking(103, "3-1", "13800001234", "49997"))
	r.c.observe(context.Background(), cfEvent(103, "AgentEvent_Conference", `{"callId":"3-1","partner":"49997,70093"}`))
	if !r.waiting(events.PendingKey(103, "cmd-help")) {
		t.Fatal("confirmed before any release")
	}
	ev := cfEvent(103, events.EventCallRelease, `"3-1"`) // CallID left for the confirmer to read
	r.c.observe(context.Background(), ev)

	got := r.await("cmd-help")
	r.gone(p)
	if got.Status != events.ConfirmationConfirmed || got.EventType != events.EventCallRelease || got.CallID != "3-1" {
		t.Errorf("confirmation = %+v, want confirmed by Call_Release of 3-1", got.Confirmation)
	}
	if !got.ReleasedAt.Equal(ev.ReceivedAt) {
		t.Errorf("ReleasedAt = %v, want the received time %v", got.ReleasedAt, ev.ReceivedAt)
	}
}

func TestConfirmCustomerThenCallReleaseConfirmsOnce(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, 5*time.Second, zerolog.Nop(), func(int) bool { return true })
	first := r.put(cfPending(104, "cmd-a", "5550104", time.Now().Add(time.Minute)))
	second := cfPending(104, "cmd-b", "5550104", time.Now().Add(time.Minute))
	second.AcceptedAt = first.AcceptedAt.Add(time.Second)
	r.put(second)

	r.c.observe(context.Background(), cfTalking(104, "4-1", "5550104", "104"))
	r.c.observe(context.Background(), cfCustomerRelease(104, "4-1", "5550104"))
	r.c.observe(context.Background(), cfCallRelease(104, "4-1"))

	if got := r.await("cmd-a"); got.EventType != events.EventCustomerRelease {
		t.Errorf("cmd-a confirmed by %s, want Customer_Release", got.EventType)
	}
	r.gone(first)
	testenv.WaitFor(t, 5*time.Second, "settling", r.settled)
	if !r.waiting(events.PendingKey(104, "cmd-b")) {
		t.Error("the Call_Release of the same call confirmed the second command too")
	}
	if n := len(r.confirmations()); n != 1 {
		t.Errorf("%d commands have confirmations, want 1", n)
	}
}

func TestConfirmOldestPendingFirst(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, 5*time.Second, zerolog.Nop(), func(int) bool { return true })
	// The newer command is written first: age is AcceptedAt, not write order.
	newer := cfPending(105, "cmd-new", "5550105", time.Now().Add(time.Minute))
	newer.AcceptedAt = newer.AcceptedAt.Add(time.Second)
	r.put(newer)
	older := r.put(cfPending(105, "cmd-old", "5550105", time.Now().Add(time.Minute)))

	r.c.observe(context.Background(), cfCustomerRelease(105, "5-1", "5550105"))
	r.await("cmd-old")
	r.gone(older)
	testenv.WaitFor(t, 5*time.Second, "settling", r.settled)
	if !r.waiting(events.PendingKey(105, "cmd-new")) {
		t.Fatal("one release confirmed both commands")
	}
	r.c.observe(context.Background(), cfCustomerRelease(105, "5-2", "5550105"))
	if got := r.await("cmd-new"); got.CallID != "5-2" {
		t.Errorf("cmd-new confirmed by call %q, want 5-2", got.CallID)
	}
	r.gone(newer)
}

// A command scoped to a call (its call_id or pinned call, on the pending
// record) is confirmed only by a release of its number in that call: not
// by the customer's own hang-up of an earlier call kept for the grace,
// nor by a release in another call seen while it waits (seed 685979328:
// 2,034 of 4,215 confirmations named another call of the same customer).
func TestConfirmNamesTheCommandsCall(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, 5*time.Second, zerolog.Nop(), func(int) bool { return true })
	r.c.observe(context.Background(), cfCustomerRelease(106, "6-1", "5550106")) // kept for the grace

	kept := cfPending(106, "cmd-kept", "5550106", time.Now().Add(time.Minute))
	kept.CallID = "6-2"
	r.put(kept)
	live := cfPending(106, "cmd-live", "5550106", time.Now().Add(time.Minute))
	live.CallID, live.AcceptedAt = "6-3", kept.AcceptedAt.Add(-time.Second) // the oldest waiting
	r.put(live)
	testenv.WaitFor(t, 5*time.Second, "settling", r.settled)
	r.c.observe(context.Background(), cfCustomerRelease(106, "6-2", "5550106"))
	if got := r.await("cmd-kept"); got.CallID != "6-2" {
		t.Errorf("cmd-kept confirmed by call %q, want 6-2", got.CallID)
	}
	r.gone(kept)
	if !r.waiting(events.PendingKey(106, "cmd-live")) {
		t.Fatal("a release in call 6-1 or 6-2 confirmed the command for call 6-3")
	}
	r.c.observe(context.Background(), cfCustomerRelease(106, "6-3", "5550106"))
	if got := r.await("cmd-live"); got.CallID != "6-3" {
		t.Errorf("cmd-live confirmed by call %q, want 6-3", got.CallID)
	}
	r.gone(live)
}

func TestConfirmDeadlineUnconfirmed(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, 300*time.Millisecond, zerolog.Nop(), func(int) bool { return true })
	p := r.put(cfPending(106, "cmd-timeout", "5550106", time.Now().Add(200*time.Millisecond)))

	got := r.await("cmd-timeout")
	r.gone(p)
	if got.Status != events.ConfirmationUnconfirmed || got.EventType != "" || got.CallID != "" || !got.ReleasedAt.IsZero() || got.LatencyMillis != 0 {
		t.Errorf("confirmation = %+v, want a bare unconfirmed", got.Confirmation)
	}
	if got.subject != events.ConfirmationSubject(events.ConfirmationUnconfirmed) || got.header.Get(events.HeaderStatus) != "unconfirmed" ||
		got.header.Get(events.HeaderMsgID) != events.ConfirmationMsgID("cmd-timeout") {
		t.Errorf("subject %q, headers %v", got.subject, got.header)
	}
	if got.ConfirmedAt.Before(p.Deadline) {
		t.Errorf("decided at %v, before the deadline %v", got.ConfirmedAt, p.Deadline)
	}

	r.c.observe(context.Background(), cfCustomerRelease(106, "6-1", "5550106"))
	testenv.WaitFor(t, 5*time.Second, "settling", r.settled)
	if n := len(r.confirmations()["cmd-timeout"]); n != 1 {
		t.Errorf("%d confirmations of cmd-timeout, want 1", n)
	}
}

func TestConfirmOrphanSweptAfterTwiceGrace(t *testing.T) {
	t.Parallel()
	// The grace is longer than the 1s sweep period, so that sweeping the
	// orphan at its deadline would be seen.
	const grace = time.Second
	r := newConfirmRig(t, grace, zerolog.Nop(), func(agent int) bool { return agent == 108 })
	deadline := time.Now().Add(100 * time.Millisecond)
	orphan := r.put(cfPending(107, "cmd-orphan", "5550107", deadline))
	owned := r.put(cfPending(108, "cmd-owned", "5550108", deadline))

	ownedGot := r.await("cmd-owned")
	r.gone(owned)
	if ownedGot.Status != events.ConfirmationUnconfirmed {
		t.Errorf("owned: status %s, want unconfirmed", ownedGot.Status)
	}
	got := r.await("cmd-orphan")
	r.gone(orphan)
	if got.Status != events.ConfirmationUnconfirmed {
		t.Errorf("orphan: status %s, want unconfirmed", got.Status)
	}
	if earliest := deadline.Add(2 * grace); got.ConfirmedAt.Before(earliest) {
		t.Errorf("orphan decided at %v, before deadline + 2*grace %v", got.ConfirmedAt, earliest)
	}
	if !ownedGot.ConfirmedAt.Before(deadline.Add(2 * grace)) {
		t.Errorf("owned decided at %v, want soon after its deadline %v", ownedGot.ConfirmedAt, deadline)
	}
}

func TestConfirmContentKeyCasing(t *testing.T) {
	t.Parallel()
	r := newConfirmRig(t, 5*time.Second, zerolog.Nop(), func(int) bool { return true })
	tests := []struct {
		name, number, callID string
		events               []events.AgentEvent
		wantType             string
	}{
		{"customer release, capitalised keys", "555", "1-1", []events.AgentEvent{
			cfEvent(201, events.EventCustomerRelease, `{"CallId":"1-1","Number":"555"}`),
		}, events.EventCustomerRelease},
		{"customer release, numeric number", "5550202", "2-2", []events.AgentEvent{
			cfEvent(202, events.EventCustomerRelease, `{"CALLID":"2-2","NUMBER":5550202}`),
		}, events.EventCustomerRelease},
		{"ringing agent caller", "7002", "3-3", []events.AgentEvent{
			cfEvent(203, "AgentEvent_Ringing", `{"Caller":"A7002","Called":"203","CallID":"3-3"}`),
			cfEvent(203, events.EventCallRelease, `{"CallId":"3-3"}`),
		}, events.EventCallRelease},
		{"alerting other phone", "80004", "4-4", []events.AgentEvent{
			cfEvent(204, "AgentEvent_Customer_Alerting", `{"callId":"4-4","otherPhone":"80004"}`),
			cfEvent(204, events.EventCallRelease, `" 4-4 "`),
		}, events.EventCallRelease},
	}
	for i, tt := range tests {
		agent := 201 + i
		p := r.put(cfPending(agent, fmt.Sprintf("cmd-case-%d", i), tt.number, time.Now().Add(time.Minute)))
		for _, ev := range tt.events {
			r.c.observe(context.Background(), ev)
		}
		got := r.await(p.CommandID)
		if got.Status != events.ConfirmationConfirmed || got.CallID != tt.callID || got.EventType != tt.wantType {
			t.Errorf("%s: confirmation = %+v, want confirmed by %s of %s", tt.name, got.Confirmation, tt.wantType, tt.callID)
		}
	}
}

func TestConfirmParseContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantStr string
		wantObj map[string]string
	}{
		{`"1456403549-15"`, "1456403549-15", nil},
		{`{"CallId":"1-1","Number":"555"}`, "", map[string]string{"callid": "1-1", "number": "555"}},
		{`{"callid":"1-1","partner":"49997,70093","feature":7,"x":{"y":1}}`, "", map[string]string{"callid": "1-1", "partner": "49997,70093", "feature": "7"}},
		{`null`, "", nil},
		{`[1,2]`, "", nil},
		{``, "", nil},
	}
	for _, tt := range tests {
		s, obj := parseReleaseContent(json.RawMessage(tt.in))
		if s != tt.wantStr || !maps.Equal(obj, tt.wantObj) {
			t.Errorf("parseReleaseContent(%s) = %q, %v; want %q, %v", tt.in, s, obj, tt.wantStr, tt.wantObj)
		}
	}
	for in, want := range map[string]string{"A7002": "7002", "a1": "1", " 555 ": "555", "A": "A", "Abc": "Abc", "": ""} {
		if got := normalizeParty(in); got != want {
			t.Errorf("normalizeParty(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfirmForgetsOldCalls(t *testing.T) {
	t.Parallel()
	c := newConfirmer(Config{}, nil, zerolog.Nop(), func(int) bool { return true })
	if c.grace != confirmDefaultGrace {
		t.Errorf("grace = %v, want the default %v", c.grace, confirmDefaultGrace)
	}
	for i := range confirmCallsPerAgent + 8 {
		c.observe(context.Background(), cfTalking(301, fmt.Sprintf("c-%d", i), "1", "2"))
	}
	c.observe(context.Background(), cfCallRelease(301, "c-39"))
	c.mu.Lock()
	tr := c.agents[301]
	n, ids := len(tr.calls), slices.Clone(tr.order)
	c.mu.Unlock()
	if n != confirmCallsPerAgent || ids[0] != "c-8" {
		t.Fatalf("remembers %d calls from %s, want %d from c-8", n, ids[0], confirmCallsPerAgent)
	}
	c.sweep(time.Now().Add(confirmCallMemory + time.Second))
	c.mu.Lock()
	_, kept := c.agents[301].calls["c-39"]
	c.mu.Unlock()
	if kept {
		t.Error("an ended call outlived confirmCallMemory")
	}
}
