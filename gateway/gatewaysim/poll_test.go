package gatewaysim

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestEmptyPollHeld(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signIn(101)
	b.nextEvent(101, guid)
	b.nextEvent(101, guid)
	start := time.Now()
	_, rep := b.poll(101, guid)
	held := time.Since(start)
	if rep.RetCode != "0" || rep.Event != nil || rep.Message != "" {
		t.Fatalf("empty poll %+v", rep)
	}
	if held < 90*time.Millisecond || held > 3*time.Second {
		t.Fatalf("held %v, want about 100ms", held)
	}
}

func TestPollReturnsEarlyOnEvent(t *testing.T) {
	b := setup(t, Config{PollHold: 30 * time.Second})
	guid := b.signIn(101)
	b.nextEvent(101, guid)
	b.nextEvent(101, guid)
	got := make(chan wireReply, 1)
	start := time.Now()
	go func() {
		_, rep, _ := b.do(http.MethodGet, agentPath("/agentevent/101"), guid, nil)
		got <- rep
	}()
	waitFor(t, "poll held", func() bool { return b.sim.Polls(101) == 3 })
	b.sim.QueueEvent(101, "Test_Event", map[string]string{"k": "v"})
	rep := <-got
	if rep.Event == nil || rep.Event.EventType != "Test_Event" || string(rep.Event.Content) != `{"k":"v"}` {
		t.Fatalf("poll got %+v", rep)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("poll took %v", d)
	}
}

func TestPollReturnsWhenClientLeaves(t *testing.T) {
	b := setup(t, Config{PollHold: time.Hour})
	guid := b.signIn(101)
	b.drainNow(101, guid)
	b.client.Timeout = 100 * time.Millisecond
	if _, _, err := b.do(http.MethodGet, agentPath("/agentevent/101"), guid, nil); err == nil {
		t.Fatal("want a client timeout")
	}
	waitFor(t, "poll to end", func() bool { return b.sim.pollsHeld(101) == 0 })
}

func TestPollClosedSimReturns(t *testing.T) {
	b := setup(t, Config{PollHold: time.Hour})
	guid := b.signIn(101)
	b.drainNow(101, guid)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.do(http.MethodGet, agentPath("/agentevent/101"), guid, nil)
	}()
	waitFor(t, "poll held", func() bool { return b.sim.pollsHeld(101) == 1 })
	b.sim.Close()
	<-done
	b.sim.Close() // idempotent
}

func TestConcurrentPolls(t *testing.T) {
	b := setup(t, Config{PollHold: 300 * time.Millisecond})
	guid := b.signIn(101)
	b.drainNow(101, guid)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { b.do(http.MethodGet, agentPath("/agentevent/101"), guid, nil) })
	}
	waitFor(t, "two polls", func() bool { return b.sim.Polls(101) == 4 })
	wg.Wait()
	if n := b.sim.ConcurrentPolls(); n != 1 {
		t.Fatalf("ConcurrentPolls %d, want 1", n)
	}
}

func TestReleaseEventsInOrder(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signIn(101)
	callID, err := b.sim.StartCall(101, "5550100")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{EventInService, EventReady, EventTalking} {
		if ev := b.nextEvent(101, guid); ev.EventType != want {
			t.Fatalf("event %s, want %s", ev.EventType, want)
		}
	}
	wantCode(t, "disconnect", b.disconnect(101, guid, "5550100"), "0")
	ev := b.nextEvent(101, guid)
	var cr struct{ Callid, Number string }
	if ev.EventType != EventCustomerRelease || json.Unmarshal(ev.Content, &cr) != nil || cr.Callid != callID || cr.Number != "5550100" {
		t.Fatalf("first event %s %s", ev.EventType, ev.Content)
	}
	ev = b.nextEvent(101, guid)
	if ev.EventType != EventCallRelease || string(ev.Content) != `"`+callID+`"` {
		t.Fatalf("second event %s %s", ev.EventType, ev.Content)
	}
	if b.sim.Executed() != 1 {
		t.Fatalf("Executed %d", b.sim.Executed())
	}
}

// drainNow empties the queue without a held poll at the end.
func (b *bundle) drainNow(id int, guid string) {
	b.t.Helper()
	for b.sim.queued(id) > 0 {
		b.nextEvent(id, guid)
	}
}

func (s *Sim) queued(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.agents[id].queue)
}

func (s *Sim) pollsHeld(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agents[id].polling
}
