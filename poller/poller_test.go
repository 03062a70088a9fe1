package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats-server keeps a few process-wide goroutines after shutdown.
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).logRejectedTLSConns"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).syncBlocks"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

// testConfig is a poller configuration with short timings for tests.
func testConfig() Config {
	return Config{LeaseTTL: 6 * time.Second, PollTimeout: 3 * time.Second, PollGap: 200 * time.Millisecond,
		InitialBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, ReleaseGrace: 5 * time.Second}
}

// Every event is republished once on its agent's subject with the content
// as received; call ID and number are read from null, bare-string and
// object contents with any key casing.
func TestRepublishesEvents(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	b.signIn([]int{101, 102})
	r := b.startReplica("r1")
	testenv.WaitFor(t, 15*time.Second, "sign-in events republished", func() bool {
		c := b.subjectCounts(events.SubjectAgentEvents + ".>")
		return c["callcontrol.events.101.AgentState_Ready"] == 1 && c["callcontrol.events.102.AgentState_Ready"] == 1
	})

	b.sim.QueueEvent(101, "AgentEvent_Call_Release", "1456403549-15")
	b.sim.QueueEvent(101, "AgentEvent_Customer_Release", map[string]any{"CallID": "1456403549-15", "NUMBER": "88880001"})
	b.sim.QueueEvent(101, "AgentOther_PhoneAlerting", nil)
	b.sim.QueueEvent(101, "OUTBOUND_DETECT_EVENT", map[string]any{"callId": 42, "detect": 1})
	b.sim.QueueEvent(102, "AgentEvent_Talking", map[string]any{"callid": "c-2", "caller": "139", "called": "101"})
	want := []struct {
		subject, callID, number, content string
	}{
		{"callcontrol.events.101.AgentEvent_Call_Release", "1456403549-15", "", `"1456403549-15"`},
		{"callcontrol.events.101.AgentEvent_Customer_Release", "1456403549-15", "88880001", `{"CallID":"1456403549-15","NUMBER":"88880001"}`},
		{"callcontrol.events.101.AgentOther_PhoneAlerting", "", "", `null`},
		{"callcontrol.events.101.OUTBOUND_DETECT_EVENT", "42", "", `{"callId":42,"detect":1}`},
		{"callcontrol.events.102.AgentEvent_Talking", "c-2", "", `{"called":"101","caller":"139","callid":"c-2"}`},
	}
	testenv.WaitFor(t, 15*time.Second, "queued events republished", func() bool {
		c := b.subjectCounts(events.SubjectAgentEvents + ".>")
		for _, w := range want {
			if c[w.subject] == 0 {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		m := b.lastMsg(w.subject)
		var ev events.AgentEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		agent := 101
		if strings.Contains(w.subject, ".102.") {
			agent = 102
		}
		if ev.AgentID != agent || ev.CallID != w.callID || ev.Number != w.number || string(ev.Content) != w.content {
			t.Errorf("%s: got agent %d call_id %q number %q content %s, want %d %q %q %s",
				w.subject, ev.AgentID, ev.CallID, ev.Number, ev.Content, agent, w.callID, w.number, w.content)
		}
		if ev.GeneratedAt.IsZero() || ev.ReceivedAt.IsZero() || !strings.HasSuffix(w.subject, "."+ev.Type) {
			t.Errorf("%s: type %q generated_at %v received_at %v", w.subject, ev.Type, ev.GeneratedAt, ev.ReceivedAt)
		}
		if id := m.Header.Get(events.HeaderMsgID); len(id) != 35 || !strings.HasPrefix(id, "ev-") {
			t.Errorf("%s: Nats-Msg-Id %q", w.subject, id)
		}
	}
	for subject, n := range b.subjectCounts(events.SubjectAgentEvents + ".>") {
		if n != 1 {
			t.Errorf("%s: %d messages, want 1", subject, n)
		}
	}
	if got := r.p.Owned(); len(got) != 2 || got[0] != 101 || got[1] != 102 {
		t.Errorf("Owned() = %v, want [101 102]", got)
	}
}

// A publish retried after a lost ack (same event, same Nats-Msg-Id) is
// stored once; without eventGenTime the ID depends on the arrival time
// taken once, so two arrivals of equal content are two events.
func TestRepublishIsStoredOnce(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	p, err := New(b.cfg, b.js, b.newGateway())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	withGen := &gateway.Event{Type: "AgentEvent_Call_Release", Content: []byte(`"c-1"`), GenTime: 1700000000000}
	noGen := &gateway.Event{Type: "AgentEvent_Hold", Content: []byte(`"c-1"`)}
	arrival := time.Now()
	for i := range 3 {
		// Arrival time changes between retries of the same event with
		// eventGenTime, but not for the one without (it is taken once).
		m1, _ := eventMsg(101, withGen, arrival.Add(time.Duration(i)*time.Second))
		m2, _ := eventMsg(101, noGen, arrival)
		for _, m := range []*nats.Msg{m1, m2} {
			if err := p.publish(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	m3, _ := eventMsg(101, noGen, arrival.Add(time.Millisecond)) // a second, distinct arrival
	if err := p.publish(ctx, m3); err != nil {
		t.Fatal(err)
	}
	c := b.subjectCounts(events.SubjectAgentEvents + ".>")
	if c["callcontrol.events.101.AgentEvent_Call_Release"] != 1 || c["callcontrol.events.101.AgentEvent_Hold"] != 2 {
		t.Errorf("stored %v, want 1 Call_Release and 2 Hold", c)
	}
}

// On shutdown Run returns nil and deletes its leases and its membership,
// so another replica can take over at once.
func TestShutdownReleasesLeases(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{PollHold: time.Second})
	agents := agentsFrom(101, 5)
	b.signIn(agents)
	r := b.startReplica("r1")
	testenv.WaitFor(t, 15*time.Second, "all agents owned", func() bool { return len(r.p.Owned()) == len(agents) })
	start := time.Now()
	r.stop()
	if d := time.Since(start); d > b.cfg.PollTimeout+time.Second {
		t.Errorf("Run took %v to return, want at most PollTimeout", d)
	}
	kv := b.kv(events.BucketPollers)
	keys, err := kv.Keys(context.Background())
	if err != nil && err != jetstream.ErrNoKeysFound {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left in %s: %v", events.BucketPollers, keys)
	}
	if n := len(r.p.Owned()); n != 0 {
		t.Errorf("Owned() after Run = %d agents", n)
	}
	if !bytes.Contains(b.logs.Bytes(), []byte(`"poller stopped"`)) {
		t.Error("no stop log line")
	}
}

// A poller stopped while it starts (SIGTERM before its buckets are open)
// returns nil, as the worker does: being stopped is not a failure to start.
// A bucket that is missing while nobody stops it is still an error.
func TestStoppedWhileStartingIsNoError(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	p, err := New(b.cfg, b.js, b.newGateway())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run stopped while starting = %v, want nil", err)
	}
	if err := b.js.DeleteKeyValue(context.Background(), events.BucketCalls); err != nil {
		t.Fatal(err)
	}
	p, err = New(b.cfg, b.js, b.newGateway())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Run(ctx); err == nil || !strings.Contains(err.Error(), events.BucketCalls) {
		t.Fatalf("Run without bucket %s = %v, want an error naming it", events.BucketCalls, err)
	}
}
