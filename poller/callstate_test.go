package poller

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// callState returns agent's stored call state and whether the key exists.
func (b *bundle) callState(agent int) (events.CallState, bool) {
	b.t.Helper()
	e, err := b.kv(events.BucketCalls).Get(context.Background(), events.CallStateKey(agent))
	if err != nil {
		return events.CallState{}, false
	}
	var s events.CallState
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		b.t.Fatal(err)
	}
	return s, true
}

// waitCalls waits until agent's stored state, complete and polled, has
// exactly the calls want (as summary renders them) and returns it.
func (b *bundle) waitCalls(agent int, what string, want ...string) events.CallState {
	b.t.Helper()
	var s events.CallState
	testenv.WaitFor(b.t, 15*time.Second, what, func() bool {
		var ok bool
		s, ok = b.callState(agent)
		return ok && s.Polling && !s.ObservedAt.IsZero() && slices.Equal(summary(s), want)
	})
	return s
}

// callWrites records every write of BucketCalls, in order.
type callWrites struct {
	mu  sync.Mutex
	all []events.CallState
	at  []time.Time // when the server stored each
}

func (b *bundle) watchCalls() *callWrites {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := b.kv(events.BucketCalls).WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		b.t.Fatal(err)
	}
	cw := &callWrites{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			var s events.CallState
			if json.Unmarshal(e.Value(), &s) == nil {
				cw.mu.Lock()
				cw.all = append(cw.all, s)
				cw.at = append(cw.at, e.Created())
				cw.mu.Unlock()
			}
		}
	}()
	b.t.Cleanup(func() { _ = w.Stop(); cancel(); <-done })
	return cw
}

func (cw *callWrites) of(agent int) []events.CallState {
	out, _ := cw.timed(agent)
	return out
}

// timed returns agent's writes and when each was stored.
func (cw *callWrites) timed(agent int) ([]events.CallState, []time.Time) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	var out []events.CallState
	var at []time.Time
	for i, s := range cw.all {
		if s.AgentID == agent {
			out, at = append(out, s), append(at, cw.at[i])
		}
	}
	return out, at
}

// The stored state follows the simulator's calls: a call talking, a
// two-party help call beside it (the customer's call held), the conference
// that merges them, the parties hanging up, the customer's redial, a hold;
// a sign-out ends the calls and the polling. Since is when the poller saw
// the call first; the helper's work number is a party, the agent's own
// never.
func TestCallStateFollowsTheCalls(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second, RedialAfter: 300 * time.Millisecond})
	b.signIn([]int{101, 102})
	b.startReplica("r1")
	b.waitCalls(101, "an empty state, complete after sign-in")

	before := time.Now()
	c1, err := b.sim.StartCall(101, "5550101")
	if err != nil {
		t.Fatal(err)
	}
	s := b.waitCalls(101, "the call talking", c1+":talking:5550101")
	if since := s.LastCall().Since; since.Before(before) || since.After(time.Now()) || s.Owner != "r1" {
		t.Fatalf("state %+v: since or owner wrong", s)
	}
	if err := b.sim.InnerHelp(101, 102, false); err != nil {
		t.Fatal(err)
	}
	s = b.waitState(101, "the customer's call held and the help call last", func(s events.CallState) bool {
		return len(s.Calls) == 2 && s.Calls[0].CallID == c1 && s.Calls[0].Phase == events.CallHeld &&
			s.Calls[1].Phase == events.CallHelp && slices.Equal(s.Calls[1].Parties, []string{"102"})
	})
	help := s.Calls[1].CallID
	if err := b.sim.ConfJoin(101); err != nil {
		t.Fatal(err)
	}
	s = b.waitCalls(101, "one three-party call", help+":three_party:102,5550101")
	if _, ok := s.EndedCallAt(c1); !ok {
		t.Fatalf("the merged call %s is not among the ended: %+v", c1, s.Ended)
	}
	if err := b.sim.CustomerHangup(101, "102"); err != nil {
		t.Fatal(err)
	}
	b.waitCalls(101, "the helper gone", help+":three_party:5550101")
	if err := b.sim.CustomerHangup(101, "5550101"); err != nil {
		t.Fatal(err)
	}
	s = b.waitState(101, "the customer's redial talking, the conference ended", func(s events.CallState) bool {
		_, ended := s.EndedCallAt(help)
		return ended && len(s.Calls) == 1 && s.Calls[0].CallID != help && s.Calls[0].CallID != c1 &&
			s.Calls[0].Phase == events.CallTalking && slices.Equal(s.Calls[0].Parties, []string{"5550101"})
	})
	redial := s.Calls[0].CallID
	if err := b.sim.Hold(101); err != nil {
		t.Fatal(err)
	}
	b.waitCalls(101, "the redial held", redial+":held:5550101")

	b.sim.QueueEvent(101, eventShutdownService, map[string]any{"loginTime": 1})
	testenv.WaitFor(t, 15*time.Second, "the state of a signed-out agent: no call, not polled", func() bool {
		s, ok := b.callState(101)
		_, ended := s.EndedCallAt(redial)
		return ok && !s.Polling && len(s.Calls) == 0 && ended && s.LastEvent == eventShutdownService
	})
}

// waitState waits until agent's stored state is complete, polled and
// satisfies cond, and returns it.
func (b *bundle) waitState(agent int, what string, cond func(events.CallState) bool) events.CallState {
	b.t.Helper()
	var s events.CallState
	testenv.WaitFor(b.t, 15*time.Second, what, func() bool {
		var ok bool
		s, ok = b.callState(agent)
		return ok && s.Polling && !s.ObservedAt.IsZero() && cond(s)
	})
	return s
}

// Two pollers: each agent's state is written by the replica holding its
// lease and by no other. Per agent, the writer changes only after the
// previous one's final write (Polling false), and the successor continues
// from it: the calls stay known across hand-off and shutdown.
func TestCallStateOnlyTheOwnerWrites(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	agents := agentsFrom(101, 12)
	b.signIn(agents)
	calls := map[int]string{}
	for _, a := range agents {
		id, err := b.sim.StartCall(a, "5550"+events.CallStateKey(a))
		if err != nil {
			t.Fatal(err)
		}
		calls[a] = id
	}
	writes := b.watchCalls()
	known := func(a int, owner string) bool {
		s, ok := b.callState(a)
		return ok && s.Polling && s.Owner == owner && !s.ObservedAt.IsZero() &&
			len(s.Calls) == 1 && s.Calls[0].CallID == calls[a]
	}
	r1 := b.startReplica("r1")
	testenv.WaitFor(t, 20*time.Second, "every call known by r1", func() bool {
		for _, a := range agents {
			if !known(a, "r1") {
				return false
			}
		}
		return true
	})
	r2 := b.startReplica("r2")
	testenv.WaitFor(t, 30*time.Second, "agents shared, each state written by its lease holder", func() bool {
		o1, o2 := r1.p.Owned(), r2.p.Owned()
		if len(o1) == 0 || len(o2) == 0 || len(o1)+len(o2) != len(agents) {
			return false
		}
		for _, a := range o1 {
			if !known(a, "r1") {
				return false
			}
		}
		for _, a := range o2 {
			if !known(a, "r2") {
				return false
			}
		}
		return true
	})
	r1.stop()
	testenv.WaitFor(t, 30*time.Second, "every call known by r2 after r1 stopped", func() bool {
		for _, a := range agents {
			if !known(a, "r2") {
				return false
			}
		}
		return true
	})
	for _, a := range agents {
		ws := writes.of(a)
		for i := 1; i < len(ws); i++ {
			if ws[i].Owner != ws[i-1].Owner && ws[i-1].Polling {
				t.Errorf("agent %d: write %d by %s follows %s's write that was not its last (Polling true)", a, i, ws[i].Owner, ws[i-1].Owner)
			}
		}
	}
}

// While a poll is outstanding and the agent has a call, ObservedAt
// advances every CallStateRefresh (not more often) without any event; an
// agent without a call is not rewritten.
func TestCallStateRefreshDuringAnIdlePoll(t *testing.T) {
	cfg := testConfig()
	cfg.CallStateRefresh = 300 * time.Millisecond
	b := setup(t, cfg, gatewaysim.Config{PollHold: 2 * time.Second})
	b.signIn([]int{101, 102})
	c1, err := b.sim.StartCall(101, "5550101")
	if err != nil {
		t.Fatal(err)
	}
	b.startReplica("r1")
	first := b.waitCalls(101, "the call known", c1+":talking:5550101")
	b.waitCalls(102, "the idle agent known")
	writes := b.watchCalls()
	testenv.WaitFor(t, 10*time.Second, "ObservedAt advanced three times without an event", func() bool {
		n := 0
		for _, s := range writes.of(101) {
			if s.ObservedAt.After(first.ObservedAt) && s.LastEventAt.Equal(first.LastEventAt) {
				n++
			}
		}
		return n >= 3
	})
	ws, at := writes.timed(101)
	for i := 1; i < len(ws); i++ {
		if !ws[i].ObservedAt.After(ws[i-1].ObservedAt) {
			t.Errorf("ObservedAt did not advance: %v after %v", ws[i].ObservedAt, ws[i-1].ObservedAt)
		}
		if d := at[i].Sub(at[i-1]); i > 1 && d < cfg.CallStateRefresh-20*time.Millisecond {
			t.Errorf("refreshes stored %v apart, want at least %v", d, cfg.CallStateRefresh)
		}
		if ws[i].ObservedAt.After(time.Now()) {
			t.Errorf("ObservedAt %v is in the future", ws[i].ObservedAt)
		}
	}
	if n := len(writes.of(102)); n > 1 { // the watch's initial value
		t.Errorf("the idle agent was rewritten %d times", n-1)
	}
}

// A replica that takes an agent over from one that died (its state says
// Polling true) does not trust that state: ObservedAt stays zero, the
// dead owner's call is dropped and a new one listed but not vouched for,
// until an event says every call ended.
func TestCallStateAfterACrashIsNotTrusted(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	b.signIn([]int{101})
	r1 := b.startReplica("r1")
	b.waitCalls(101, "an empty state")
	r1.stop()
	dead := events.CallState{AgentID: 101, Owner: "dead", Polling: true, ObservedAt: time.Now().UTC(),
		Calls: []events.Call{{CallID: "c0", Parties: []string{"5550101"}, Phase: events.CallTalking, Since: time.Now().UTC()}}}
	v, _ := json.Marshal(dead)
	if _, err := b.kv(events.BucketCalls).Put(context.Background(), events.CallStateKey(101), v); err != nil {
		t.Fatal(err)
	}
	b.startReplica("r2")
	c1, err := b.sim.StartCall(101, "5550101")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 15*time.Second, "r2's state: the new call, not vouched for", func() bool {
		s, ok := b.callState(101)
		return ok && s.Owner == "r2" && s.Polling && s.ObservedAt.IsZero() && slices.Equal(summary(s), []string{c1 + ":talking:5550101"})
	})
	b.sim.QueueEvent(101, eventPhoneRelease, map[string]any{"phoneState": 3})
	b.waitCalls(101, "a complete state once the phone released")
}
