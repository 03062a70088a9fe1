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
				cw.mu.Unlock()
			}
		}
	}()
	b.t.Cleanup(func() { _ = w.Stop(); cancel(); <-done })
	return cw
}

func (cw *callWrites) of(agent int) []events.CallState {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	var out []events.CallState
	for _, s := range cw.all {
		if s.AgentID == agent {
			out = append(out, s)
		}
	}
	return out
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
