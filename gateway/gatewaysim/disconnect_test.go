package gatewaysim

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// callSetup signs agent 101 in over HTTP and starts a call with 5550100.
func callSetup(t *testing.T, cfg Config) (*bundle, string) {
	t.Helper()
	b := setup(t, cfg)
	guid := b.signIn(101)
	if _, err := b.sim.StartCall(101, "5550100"); err != nil {
		t.Fatal(err)
	}
	return b, guid
}

func TestDisconnectValidation(t *testing.T) {
	b, guid := callSetup(t, Config{})
	tests := []struct{ agent, number, want string }{
		{"101", "12a", rcBadParam},
		{"101", "1234567890123456789012345", rcBadParam},
		{"100", "5550100", rcBadParam},
		{"60000", "5550100", rcBadParam},
		{"abc", "5550100", rcBadParam},
		{"101", "5550199", rcNotInCall},
	}
	for _, tt := range tests {
		_, rep := b.must(http.MethodPost, Prefix+"/voicecall/"+tt.agent+"/disconnect/"+tt.number, guid, nil)
		wantCode(t, tt.agent+"/"+tt.number, rep.RetCode, tt.want)
	}
	if n := b.sim.Executed(); n != 0 {
		t.Fatalf("Executed %d", n)
	}
	recs := b.sim.Disconnects()
	if len(recs) != len(tests) || recs[0].Number != "12a" || recs[0].RetCode != rcBadParam || recs[0].Executed {
		t.Fatalf("records %+v", recs)
	}
}

func TestDisconnectNoCall(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signIn(101)
	wantCode(t, "no call", b.disconnect(101, guid, "5550100"), rcNoCall)
	b.sim.StartCall(101, "5550100")
	wantCode(t, "first", b.disconnect(101, guid, "5550100"), "0")
	wantCode(t, "repeat", b.disconnect(101, guid, "5550100"), rcNoCall)
	if n := b.sim.Executed(); n != 1 {
		t.Fatalf("Executed %d", n)
	}
	recs := b.sim.Disconnects()
	if len(recs) != 3 || !recs[1].Executed || recs[1].RetCode != "0" || recs[1].AgentID != 101 || recs[1].At.IsZero() {
		t.Fatalf("records %+v", recs)
	}
}

func TestLastCallRuleTwoPartyHelp(t *testing.T) {
	b, guid := callSetup(t, Config{})
	if err := b.sim.InnerHelp(101, 202, false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "held customer", b.disconnect(101, guid, "5550100"), rcNotInLastCall)
	wantCode(t, "helper", b.disconnect(101, guid, "202"), "0")
	wantCode(t, "customer after help ended", b.disconnect(101, guid, "5550100"), "0")
	if n := b.sim.Executed(); n != 2 {
		t.Fatalf("Executed %d", n)
	}
}

// A held call becomes the agent's last call again when the call after it
// ends; the record of a release from it says when (CallLastSince), which
// is what the soak's checker compares with the call check's window.
func TestReleaseRecordsWhenTheCallBecameTheLast(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 7, 41, 25, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	step := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b, guid := callSetup(t, Config{Now: clock})
	began := clock()
	step(time.Second)
	if err := b.sim.InnerHelp(101, 202, false); err != nil {
		t.Fatal(err)
	}
	step(time.Second)
	wantCode(t, "helper", b.disconnect(101, guid, "202"), "0")
	helpEnded := clock()
	step(200 * time.Millisecond)
	wantCode(t, "held customer, now in the last call", b.disconnect(101, guid, "5550100"), "0")
	recs := b.sim.Disconnects()
	if got := recs[0].CallLastSince; !got.Equal(recs[0].CallBegan) {
		t.Errorf("help call: last since %v, want its start %v", got, recs[0].CallBegan)
	}
	if got := recs[1]; !got.CallBegan.Equal(began) || !got.CallLastSince.Equal(helpEnded) {
		t.Errorf("held call: began %v, last since %v; want %v and %v", got.CallBegan, got.CallLastSince, began, helpEnded)
	}
}

func TestLastCallRuleHold(t *testing.T) {
	b, guid := callSetup(t, Config{})
	if err := b.sim.Hold(101); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "held customer in last call", b.disconnect(101, guid, "5550100"), "0")
}

func TestThreeParty(t *testing.T) {
	for _, viaConf := range []bool{false, true} {
		b, guid := callSetup(t, Config{})
		var err error
		if viaConf {
			if err = b.sim.InnerHelp(101, 202, false); err == nil {
				err = b.sim.ConfJoin(101)
			}
		} else {
			err = b.sim.InnerHelp(101, 202, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "customer", b.disconnect(101, guid, "5550100"), "0")
		wantCode(t, "helper", b.disconnect(101, guid, "202"), "0")
		wantCode(t, "call gone", b.disconnect(101, guid, "202"), rcNoCall)
	}
}

func TestThreePartyKeepsCall(t *testing.T) {
	b, guid := callSetup(t, Config{})
	b.sim.InnerHelp(101, 202, true)
	b.drainNow(101, guid)
	wantCode(t, "helper", b.disconnect(101, guid, "202"), "0")
	if ev := b.nextEvent(101, guid); ev.EventType != EventCustomerRelease {
		t.Fatalf("event %s", ev.EventType)
	}
	if n := b.sim.queued(101); n != 0 {
		t.Fatalf("call ended early: %d more events", n)
	}
}

func TestSetupErrors(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	if _, err := s.StartCall(101, "1"); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("unknown agent: %v", err)
	}
	s.AddAgent(101, "")
	if _, err := s.StartCall(101, "1"); !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("signed out: %v", err)
	}
	s.SignIn(101)
	if _, err := s.StartCall(101, "x"); !errors.Is(err, ErrBadNumber) {
		t.Fatalf("bad number: %v", err)
	}
	if err := s.Hold(101); !errors.Is(err, ErrNoCall) {
		t.Fatalf("hold: %v", err)
	}
	s.StartCall(101, "1")
	if _, err := s.StartCall(101, "2"); !errors.Is(err, ErrBusy) {
		t.Fatalf("busy: %v", err)
	}
	if err := s.ConfJoin(101); !errors.Is(err, ErrNoHeldCall) {
		t.Fatalf("confjoin: %v", err)
	}
	if err := s.CustomerHangup(101, "9"); !errors.Is(err, ErrNotParty) {
		t.Fatalf("hangup: %v", err)
	}
	s.Close()
	if _, err := s.SignIn(101); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

func TestCustomerHangup(t *testing.T) {
	b, guid := callSetup(t, Config{})
	b.drainNow(101, guid)
	if err := b.sim.CustomerHangup(101, "5550100"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{EventCustomerRelease, EventCallRelease} {
		if ev := b.nextEvent(101, guid); ev.EventType != want {
			t.Fatalf("event %s, want %s", ev.EventType, want)
		}
	}
	if n := b.sim.Executed(); n != 0 {
		t.Fatalf("Executed %d", n)
	}
	wantCode(t, "after hangup", b.disconnect(101, guid, "5550100"), rcNoCall)
}

func TestOverlap(t *testing.T) {
	b, guid := callSetup(t, Config{Latency: 200 * time.Millisecond})
	codes := make(chan string, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { codes <- b.disconnect(101, guid, "5550100") })
	}
	wg.Wait()
	close(codes)
	got := map[string]int{}
	for c := range codes {
		got[c]++
	}
	if got["0"] != 1 || got[rcRepeated] != 1 {
		t.Fatalf("retcodes %v", got)
	}
	if n := b.sim.Overlaps(); n != 1 {
		t.Fatalf("Overlaps %d", n)
	}
	// Sequential requests never overlap, even right after a reply.
	for range 5 {
		b.disconnect(101, guid, "5550100")
	}
	if n := b.sim.Overlaps(); n != 1 {
		t.Fatalf("Overlaps after sequential requests %d", n)
	}
}

func TestRedial(t *testing.T) {
	b, guid := callSetup(t, Config{RedialAfter: 20 * time.Millisecond})
	b.drainNow(101, guid)
	wantCode(t, "disconnect", b.disconnect(101, guid, "5550100"), "0")
	var types []string
	for len(types) < 4 {
		types = append(types, b.nextEvent(101, guid).EventType)
	}
	want := []string{EventCustomerRelease, EventCallRelease, EventRinging, EventTalking}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	wantCode(t, "redialled call", b.disconnect(101, guid, "5550100"), "0")
}

// TestManyAgents runs concurrent sign-ins, polls and disconnects for many
// agents; with -race it checks the locking.
func TestManyAgents(t *testing.T) {
	b := setup(t, Config{PollHold: 20 * time.Millisecond})
	const agents = 50
	var wg sync.WaitGroup
	for i := range agents {
		wg.Go(func() {
			id := 1000 + i
			guid := b.signIn(id)
			for range 3 {
				if _, err := b.sim.StartCall(id, "5550100"); err != nil {
					t.Error(err)
					return
				}
				b.poll(id, guid)
				if rc := b.disconnect(id, guid, "5550100"); rc != "0" {
					t.Errorf("agent %d: %s", id, rc)
				}
			}
		})
	}
	wg.Wait()
	if n := b.sim.Executed(); n != agents*3 {
		t.Fatalf("Executed %d", n)
	}
	if b.sim.Overlaps() != 0 || b.sim.ConcurrentPolls() != 0 {
		t.Fatalf("overlaps %d concurrent polls %d", b.sim.Overlaps(), b.sim.ConcurrentPolls())
	}
}
