package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// confirmRig is one confirmer test: a real nats-server with the streams
// and buckets provisioned, and a running confirmer.
type confirmRig struct {
	t  *testing.T
	js jetstream.JetStream
	kv jetstream.KeyValue
	c  *confirmer
}

// newConfirmRig starts NATS and a confirmer with the given grace and
// ownership; log may be zerolog.Nop().
func newConfirmRig(t *testing.T, grace time.Duration, log zerolog.Logger, owns func(int) bool) *confirmRig {
	t.Helper()
	_, js := testenv.Connect(t, testenv.JetStream(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := worker.Provision(ctx, js, worker.Topology{DuplicateWindow: time.Minute}, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, events.BucketPending)
	if err != nil {
		t.Fatal(err)
	}
	r := &confirmRig{t: t, js: js, kv: kv, c: newConfirmer(Config{ReleaseGrace: grace}, js, log, owns)}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.c.run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("confirmer.run: %v", err)
		}
	})
	return r
}

// put stores a pending record as the worker does and waits until the
// confirmer has seen it (or already decided it).
func (r *confirmRig) put(p events.Pending) events.Pending {
	r.t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		r.t.Fatal(err)
	}
	key := events.PendingKey(p.AgentID, p.CommandID)
	if _, err := r.kv.Put(context.Background(), key, b); err != nil {
		r.t.Fatal(err)
	}
	confirmWait(r.t, 5*time.Second, "the confirmer to see "+key, func() bool {
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		_, ok := r.c.pending[key]
		return ok || r.stored(p.CommandID)
	})
	return p
}

// stored reports whether the stream holds a confirmation of id.
func (r *confirmRig) stored(id string) bool {
	return len(r.confirmations()[id]) > 0
}

// waiting reports whether the confirmer holds key undecided.
func (r *confirmRig) waiting(key string) bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	pc, ok := r.c.pending[key]
	return ok && pc.out == nil
}

// settled reports whether nothing is decided but unsettled.
func (r *confirmRig) settled() bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	for _, pc := range r.c.pending {
		if pc.queued {
			return false
		}
	}
	return len(r.c.outbox) == 0
}

type storedConfirmation struct {
	events.Confirmation
	subject string
	header  nats.Header
}

// confirmations reads every confirmation stored so far, by command_id.
func (r *confirmRig) confirmations() map[string][]storedConfirmation {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		r.t.Fatal(err)
	}
	filter := events.SubjectConfirmations + ".>"
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		r.t.Fatal(err)
	}
	total := 0
	for _, n := range info.State.Subjects {
		total += int(n)
	}
	out := map[string][]storedConfirmation{}
	if total == 0 {
		return out
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		r.t.Fatal(err)
	}
	for n := 0; n < total; {
		batch, err := cons.Fetch(total-n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		for m := range batch.Messages() {
			var c storedConfirmation
			if err := json.Unmarshal(m.Data(), &c.Confirmation); err != nil {
				r.t.Fatal(err)
			}
			c.subject, c.header = m.Subject(), m.Headers()
			out[c.CommandID] = append(out[c.CommandID], c)
			n++
		}
		if batch.Error() != nil {
			r.t.Fatal(batch.Error())
		}
	}
	return out
}

// await waits for the confirmation of id and checks it is the only one.
func (r *confirmRig) await(id string) storedConfirmation {
	r.t.Helper()
	var got []storedConfirmation
	confirmWait(r.t, 10*time.Second, "the confirmation of "+id, func() bool {
		got = r.confirmations()[id]
		return len(got) > 0
	})
	if len(got) != 1 {
		r.t.Fatalf("%s: %d confirmations stored, want 1", id, len(got))
	}
	return got[0]
}

// gone waits until the pending record of p is deleted and forgotten.
func (r *confirmRig) gone(p events.Pending) {
	r.t.Helper()
	key := events.PendingKey(p.AgentID, p.CommandID)
	confirmWait(r.t, 10*time.Second, key+" to be deleted", func() bool {
		_, err := r.kv.Get(context.Background(), key)
		r.c.mu.Lock()
		_, held := r.c.pending[key]
		r.c.mu.Unlock()
		return errors.Is(err, jetstream.ErrKeyNotFound) && !held
	})
}

// confirmWait polls cond until it holds, or fails the test after within.
func confirmWait(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

func cfPending(agent int, id, number string, deadline time.Time) events.Pending {
	issued := time.Now().Add(-2 * time.Second).UTC().Truncate(time.Millisecond)
	return events.Pending{
		CommandID: id, AgentID: agent, Number: number, CorrelationID: "corr-" + id,
		IssuedAt: issued, AcceptedAt: issued.Add(100 * time.Millisecond), Deadline: deadline,
	}
}

func cfEvent(agent int, typ, content string) events.AgentEvent {
	return events.AgentEvent{AgentID: agent, Type: typ, Content: json.RawMessage(content), ReceivedAt: time.Now()}
}

func cfCustomerRelease(agent int, callID, number string) events.AgentEvent {
	ev := cfEvent(agent, events.EventCustomerRelease, fmt.Sprintf(`{"callid":%q,"number":%q}`, callID, number))
	ev.CallID, ev.Number = callID, number
	return ev
}

func cfCallRelease(agent int, callID string) events.AgentEvent {
	ev := cfEvent(agent, events.EventCallRelease, fmt.Sprintf("%q", callID))
	ev.CallID = callID
	return ev
}

func cfTalking(agent int, callID, caller, called string) events.AgentEvent {
	return cfEvent(agent, "AgentEvent_Talking", fmt.Sprintf(`{"caller":%q,"called":%q,"callid":%q,"type":"main"}`, caller, called, callID))
}

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
	confirmWait(t, 5*time.Second, "the outcome log line", func() bool { return bytes.Contains(logs.Bytes(), []byte(`"outcome":"confirmed"`)) })
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
	confirmWait(t, 4*grace, "the unmatched release to expire", func() bool {
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
	confirmWait(t, 5*time.Second, "settling", r.settled)
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
	confirmWait(t, 5*time.Second, "settling", r.settled)
	if !r.waiting(events.PendingKey(105, "cmd-new")) {
		t.Fatal("one release confirmed both commands")
	}
	r.c.observe(context.Background(), cfCustomerRelease(105, "5-2", "5550105"))
	if got := r.await("cmd-new"); got.CallID != "5-2" {
		t.Errorf("cmd-new confirmed by call %q, want 5-2", got.CallID)
	}
	r.gone(newer)
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
	confirmWait(t, 5*time.Second, "settling", r.settled)
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

func confirmationEqual(a, b events.Confirmation) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
