package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// AUTHMODE 2 with a GUID rotating every 300 ms and expiring after 1 s: the
// registry always holds a GUID the gateway accepts (a request with it never
// gets 100-006), and each rotation is announced without the GUID.
func TestRotatedGUIDIsStored(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{AuthMode: 2, GUIDInterval: 300 * time.Millisecond,
		GUIDTimeout: time.Second, PollHold: 200 * time.Millisecond})
	agents := agentsFrom(101, 5)
	b.startReplica("r1")
	// GUIDs expire after 1 s: sign in once the poller runs.
	testenv.WaitFor(t, 10*time.Second, "poller started", func() bool { return bytes.Contains(b.logs.Bytes(), []byte("poller started")) })
	first := b.signIn(agents)
	gw := b.newGateway()
	testenv.WaitFor(t, 15*time.Second, "first rotations stored", func() bool {
		for _, a := range agents {
			if s, _ := b.session(a); s.GUID == first[a] {
				return false
			}
		}
		return true
	})
	checks := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); checks++ {
		for _, a := range agents {
			s, ok := b.session(a)
			if !ok || !s.Usable() || s.AuthMode != 2 || s.Node != gatewaysim.DefaultNode {
				t.Fatalf("agent %d: session %+v (exists %v)", a, redact(s), ok)
			}
			// No call exists, so an accepted GUID answers 200-023.
			err := gw.Disconnect(context.Background(), a, "5550100", s.GUID)
			if rc := gateway.RetCodeOf(err); gateway.Classify(err) == gateway.ClassSession {
				t.Fatalf("agent %d: the GUID from the registry was refused: retcode %s: %v", a, rc, err)
			}
		}
		time.Sleep(100 * time.Millisecond) // pacing of the checks, not synchronisation
	}
	c := b.subjectCounts(events.SubjectSessionEvents + ".>")
	for _, a := range agents {
		subject := events.SessionEventSubject(a, events.SessionRotated)
		if c[subject] < 3 {
			t.Errorf("%s: %d events, want several", subject, c[subject])
		}
		if n := c[events.SessionEventSubject(a, events.SessionInvalidated)]; n != 0 {
			t.Errorf("agent %d: %d invalid events", a, n)
		}
	}
	m := b.lastMsg(events.SessionEventSubject(101, events.SessionRotated))
	var ev map[string]any
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev["guid"]; ok || ev["kind"] != "rotated" || ev["agent_id"] != float64(101) {
		t.Errorf("rotated event %s", m.Data)
	}
	if b.sim.ConcurrentPolls() != 0 {
		t.Errorf("ConcurrentPolls = %d", b.sim.ConcurrentPolls())
	}
	t.Logf("%d rounds of checks", checks)
}

func redact(s events.Session) events.Session { s.GUID = "<redacted>"; return s }

// A session error (the agent signed in elsewhere, so the stored GUID is
// dead) marks the session invalid, announces it and stops polling the
// agent, until a usable session is stored again.
func TestSessionErrorInvalidates(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	b.signIn([]int{101, 102})
	r := b.startReplica("r1")
	testenv.WaitFor(t, 15*time.Second, "both agents polled", func() bool { return r.polls.count(101) > 0 && r.polls.count(102) > 0 })

	newGUID, err := b.sim.SignIn(101) // forced: the stored GUID is now invalid
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.secrets = append(b.secrets, newGUID)
	b.mu.Unlock()
	testenv.WaitFor(t, 10*time.Second, "session marked invalid", func() bool {
		s, _ := b.session(101)
		return s.State == events.SessionInvalid
	})
	s, _ := b.session(101)
	if s.Reason != "retcode 100-006" || s.Usable() {
		t.Errorf("session %+v, want invalid with reason retcode 100-006", redact(s))
	}
	testenv.WaitFor(t, 10*time.Second, "invalid event", func() bool {
		return b.lastMsg(events.SessionEventSubject(101, events.SessionInvalidated)) != nil
	})
	var ev events.SessionEvent
	if err := json.Unmarshal(b.lastMsg(events.SessionEventSubject(101, events.SessionInvalidated)).Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.RetCode != "100-006" || ev.AgentID != 101 || ev.Kind != events.SessionInvalidated {
		t.Errorf("invalid event %+v", ev)
	}
	testenv.WaitFor(t, 10*time.Second, "agent 101 released", func() bool { return !slices.Contains(r.p.Owned(), 101) })

	// 101 is not polled any more while 102 is polled three more times.
	stopped, other := r.polls.count(101), r.polls.count(102)
	testenv.WaitFor(t, 15*time.Second, "agent 102 polled on", func() bool { return r.polls.count(102) >= other+3 })
	if n := r.polls.count(101); n != stopped {
		t.Errorf("agent 101 polled %d more times after its session became invalid", n-stopped)
	}

	// A new usable session registers the agent again.
	b.register(101, newGUID)
	testenv.WaitFor(t, 15*time.Second, "agent 101 polled again", func() bool { return b.sim.Polls(101) > 0 && r.polls.count(101) > stopped })
	if n := b.subjectCounts(events.SessionEventSubject(101, events.SessionInvalidated))[events.SessionEventSubject(101, events.SessionInvalidated)]; n != 1 {
		t.Errorf("%d invalid events, want 1", n)
	}
}

// AgentOther_ShutdownService means the agent is signed out: the event is
// republished, the session deleted and signed_out announced.
func TestShutdownServiceSignsOut(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	b.signIn([]int{101, 102})
	r := b.startReplica("r1")
	testenv.WaitFor(t, 15*time.Second, "both agents owned", func() bool { return len(r.p.Owned()) == 2 })
	b.sim.QueueEvent(101, "AgentOther_ShutdownService", map[string]any{"loginTime": 1700000000000})
	testenv.WaitFor(t, 10*time.Second, "session deleted", func() bool { _, ok := b.session(101); return !ok })
	testenv.WaitFor(t, 10*time.Second, "signed_out event", func() bool {
		return b.lastMsg(events.SessionEventSubject(101, events.SessionSignedOut)) != nil
	})
	if b.lastMsg(events.AgentEventSubject(101, "AgentOther_ShutdownService")) == nil {
		t.Error("ShutdownService event not republished")
	}
	testenv.WaitFor(t, 10*time.Second, "agent 101 released", func() bool { return slices.Equal(r.p.Owned(), []int{102}) })
	if s, ok := b.session(102); !ok || !s.Usable() {
		t.Errorf("agent 102's session changed: %+v", redact(s))
	}
}

// A session error on a poll made with an old GUID, after a new sign-in
// stored another session, leaves the new session alone: the loop goes on
// with the new GUID.
func TestSessionErrorKeepsNewSignIn(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	b.signIn([]int{101})
	gate := &gatedSource{agent: 101, held: make(chan struct{}), release: make(chan struct{})}
	r := b.startReplicaWith("r1", func(src eventSource) eventSource { gate.src = src; return gate })
	testenv.WaitFor(t, 15*time.Second, "agent polled", func() bool { return r.polls.count(101) > 0 })
	gate.armed.Store(true)
	<-gate.held // the next poll of 101 waits, as if the gateway held it

	newGUID, err := b.sim.SignIn(101)
	if err != nil {
		t.Fatal(err)
	}
	b.register(101, newGUID)
	before := b.sim.Polls(101)
	close(gate.release) // the held poll now fails with 100-006
	testenv.WaitFor(t, 10*time.Second, "agent polled with the new GUID", func() bool { return b.sim.Polls(101) > before })
	if s, ok := b.session(101); !ok || !s.Usable() || s.GUID != newGUID {
		t.Errorf("the new session was changed: %+v (exists %v, same GUID %v)", redact(s), ok, s.GUID == newGUID)
	}
	if m := b.lastMsg(events.SessionEventSubject(101, events.SessionInvalidated)); m != nil {
		t.Errorf("invalid event published: %s", m.Data)
	}
}

// gatedSource holds the first poll of agent after armed is set until
// release is closed, then fails it with retcode 100-006.
type gatedSource struct {
	src     eventSource
	agent   int
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (g *gatedSource) PollEvent(ctx context.Context, agentID int, guid string) (gateway.Poll, error) {
	if agentID == g.agent && g.armed.CompareAndSwap(true, false) {
		close(g.held)
		<-g.release
		return gateway.Poll{}, &gateway.Error{Op: "poll", StatusCode: 200, RetCode: "100-006"}
	}
	return g.src.PollEvent(ctx, agentID, guid)
}
