package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/worker"
)

// signin registers a session (taking over with forcelogin when the agent is
// already signed in elsewhere), register stores a GUID obtained elsewhere,
// and signout removes the session and logs the agent out at the gateway.
func TestSessionCommands(t *testing.T) {
	natsURL, js := testJetStream(t, worker.Config{})
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{})
	ctx := context.Background()
	kv, _ := js.KeyValue(ctx, events.BucketSessions)
	session := func(agent string) (events.Session, bool) {
		e, err := kv.Get(ctx, agent)
		if err != nil {
			return events.Session{}, false
		}
		var s events.Session
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			t.Fatal(err)
		}
		return s, true
	}
	gwFlags := []string{"--nats-url", natsURL, "--gateway-url", gwURL, "--gateway-ca", ca}
	if _, err := sim.SignIn(101); err != nil { // signed in elsewhere: signin must take over
		t.Fatal(err)
	}
	var out bytes.Buffer
	t.Setenv("CALLCONTROL_PASSWORD", "secret")
	if err := run(ctx, append([]string{"signin", "--agent", "101", "--authmode", "1"}, gwFlags...), &out); err != nil {
		t.Fatalf("signin: %v", err)
	}
	s, ok := session("101")
	if !ok || !s.Usable() || !strings.HasSuffix(s.GUID, "."+gatewaysim.DefaultNode) || s.Node != gatewaysim.DefaultNode {
		t.Fatalf("session after signin = %+v, %v", s, ok)
	}
	t.Setenv("CALLCONTROL_GUID", "abc-123.AgentGateway1")
	if err := run(ctx, []string{"register", "--agent", "102", "--nats-url", natsURL}, &out); err != nil {
		t.Fatalf("register: %v", err)
	}
	if s, ok := session("102"); !ok || s.GUID != "abc-123.AgentGateway1" || s.AuthMode != 2 {
		t.Fatalf("session after register = %+v, %v", s, ok)
	}
	if err := run(ctx, append([]string{"signout", "--agent", "101"}, gwFlags...), &out); err != nil {
		t.Fatalf("signout: %v", err)
	}
	if _, ok := session("101"); ok {
		t.Fatal("session still registered after signout")
	}
	if st := sim.Stats(); st.SignedIn != 0 {
		t.Fatalf("%d agents still signed in at the gateway", st.SignedIn)
	}
	// Each change is announced under the Nats-Msg-Id of its KV revision,
	// the one the pollers use for the same change, so it is stored once.
	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		agent int
		kind  events.SessionEventKind
	}{{101, events.SessionRegistered}, {102, events.SessionRegistered}, {101, events.SessionSignedOut}} {
		subject := events.SessionEventSubject(c.agent, c.kind)
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if id := m.Header.Get(events.HeaderMsgID); !strings.HasPrefix(id, "session-"+strconv.Itoa(c.agent)+"-") || strings.Contains(string(m.Data), "AgentGateway") {
			t.Errorf("%s: Nats-Msg-Id %q, data %s", subject, id, m.Data)
		}
	}
	if e, err := kv.Get(ctx, "102"); err != nil {
		t.Fatal(err)
	} else if m, _ := stream.GetLastMsgForSubject(ctx, events.SessionEventSubject(102, events.SessionRegistered)); m.Header.Get(events.HeaderMsgID) != "session-102-"+strconv.FormatUint(e.Revision(), 10) {
		t.Errorf("registered event of 102: Nats-Msg-Id %q, want the revision %d", m.Header.Get(events.HeaderMsgID), e.Revision())
	}
	if strings.Contains(out.String(), "AgentGateway") {
		t.Fatalf("output holds a GUID: %s", out.String())
	}
}
