package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// Writes to the session bucket by anyone (here plain KV puts and deletes,
// as the README offers) are announced as session events, and so are the
// poller's own; each change exactly once with two pollers running, under
// a Nats-Msg-Id from its KV revision, and never with the GUID.
func TestForeignSessionWritesPublishEvents(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	b.startReplica("r1")
	b.startReplica("r2")
	testenv.WaitFor(t, 10*time.Second, "both pollers started", func() bool {
		return bytes.Count(b.logs.Bytes(), []byte("poller started")) == 2
	})
	count := func(agent int, kind events.SessionEventKind) uint64 {
		s := events.SessionEventSubject(agent, kind)
		return b.subjectCounts(s)[s]
	}
	waitEvent := func(agent int, kind events.SessionEventKind) {
		t.Helper()
		testenv.WaitFor(t, 15*time.Second, strconv.Itoa(agent)+" "+string(kind)+" event", func() bool { return count(agent, kind) > 0 })
	}
	sessions := b.kv(events.BucketSessions)

	// A plain KV put registers the agent.
	guids := b.signIn([]int{101})
	e, err := sessions.Get(context.Background(), "101")
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(101, events.SessionRegistered)
	m := b.lastMsg(events.SessionEventSubject(101, events.SessionRegistered))
	if id, want := m.Header.Get(events.HeaderMsgID), "session-101-"+strconv.FormatUint(e.Revision(), 10); id != want {
		t.Errorf("Nats-Msg-Id %q, want %q", id, want)
	}

	// The poller's own write: a sign-in elsewhere makes the stored GUID
	// dead, the owner marks the session invalid.
	newGUID, err := b.sim.SignIn(101)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.secrets = append(b.secrets, newGUID)
	b.mu.Unlock()
	waitEvent(101, events.SessionInvalidated)

	// A plain KV delete signs the agent out.
	if err := sessions.Delete(context.Background(), "101"); err != nil {
		t.Fatal(err)
	}
	waitEvent(101, events.SessionSignedOut)

	// Later changes of agents each replica owns: once both are announced,
	// both replicas have handled every earlier change.
	var markers []int
	for _, r := range []string{"r1", "r2"} {
		for a := 102; ; a++ {
			if owner(a, []string{"r1", "r2"}) == r {
				markers = append(markers, a)
				break
			}
		}
	}
	for a, g := range b.signIn(markers) {
		guids[a] = g
	}
	for _, a := range markers {
		waitEvent(a, events.SessionRegistered)
	}
	for _, kind := range []events.SessionEventKind{events.SessionRegistered, events.SessionInvalidated, events.SessionSignedOut} {
		if n := count(101, kind); n != 1 {
			t.Errorf("agent 101: %d %s events, want 1", n, kind)
		}
	}
	if n := count(101, events.SessionRotated); n != 0 {
		t.Errorf("agent 101: %d rotated events, want none", n)
	}
	for _, kind := range []events.SessionEventKind{events.SessionRegistered, events.SessionInvalidated, events.SessionSignedOut} {
		m := b.lastMsg(events.SessionEventSubject(101, kind))
		var ev map[string]any
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if _, ok := ev["guid"]; ok || ev["kind"] != string(kind) || ev["agent_id"] != float64(101) {
			t.Errorf("%s event %s", kind, m.Data)
		}
		for _, g := range append([]string{newGUID}, guids[101]) {
			if bytes.Contains(m.Data, []byte(g)) {
				t.Errorf("%s event holds a GUID", kind)
			}
		}
	}
	var inv events.SessionEvent
	if err := json.Unmarshal(b.lastMsg(events.SessionEventSubject(101, events.SessionInvalidated)).Data, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.RetCode != "100-006" || inv.Reason != "retcode 100-006" {
		t.Errorf("invalid event %+v, want retcode 100-006", inv)
	}
}
