package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	if strings.Contains(out.String(), "AgentGateway") {
		t.Fatalf("output holds a GUID: %s", out.String())
	}
}
