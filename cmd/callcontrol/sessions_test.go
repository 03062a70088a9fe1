package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/callcontrol/callcontrol/admin"
	"strconv"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/worker"
)

// signin registers a session, and refuses to take over a session held
// elsewhere unless --force; register stores a GUID obtained elsewhere;
// signout logs the agent out and removes the session, and fails, saying
// so, for an agent that is not signed in. The README's examples are run
// as written (the gateway and NATS given by the environment).
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
	t.Setenv("CALLCONTROL_NATS_URL", natsURL)
	t.Setenv("CALLCONTROL_GATEWAY_URL", gwURL)
	t.Setenv("CALLCONTROL_GATEWAY_CA", ca)
	t.Setenv("CALLCONTROL_AUTHMODE", "1")
	t.Setenv("CALLCONTROL_PASSWORD", "secret")
	readme := func(prefix string) []string { // the whole line, without "callcontrol" and the comment
		line, _, _ := strings.Cut(readmeLine(t, prefix), "#")
		return strings.Fields(line)[1:]
	}
	if _, err := sim.SignIn(101); err != nil { // signed in elsewhere
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(ctx, readme("callcontrol signin --agent 101  "), &out)
	if !errors.Is(err, admin.ErrSignedInElsewhere) || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), "100-002") {
		t.Fatalf("signin of an agent signed in elsewhere = %v, want errSignedInElsewhere", err)
	}
	if _, ok := session("101"); ok {
		t.Fatal("a refused signin registered a session")
	}
	if err := run(ctx, readme("callcontrol signin --agent 101 --force"), &out); err != nil {
		t.Fatalf("signin --force: %v", err)
	}
	s, ok := session("101")
	if !ok || !s.Usable() || !strings.HasSuffix(s.GUID, "."+gatewaysim.DefaultNode) || s.Node != gatewaysim.DefaultNode {
		t.Fatalf("session after signin = %+v, %v", s, ok)
	}
	t.Setenv("CALLCONTROL_GUID", "abc-123.AgentGateway1")
	if err := run(ctx, []string{"register", "--agent", "102", "--authmode", "2"}, &out); err != nil {
		t.Fatalf("register: %v", err)
	}
	if s, ok := session("102"); !ok || s.GUID != "abc-123.AgentGateway1" || s.AuthMode != 2 {
		t.Fatalf("session after register = %+v, %v", s, ok)
	}
	signOut := readme("callcontrol signout --agent 101")
	if err := run(ctx, signOut, &out); err != nil {
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
	if err := run(ctx, signOut, &out); err == nil || !strings.Contains(err.Error(), "agent 101 is not signed in: no session registered") {
		t.Fatalf("second signout = %v, want: not signed in", err)
	}
	// 102's GUID is unknown to the gateway: not signed in, the entry goes.
	err = run(ctx, []string{"signout", "--agent", "102"}, &out)
	if err == nil || !strings.Contains(err.Error(), "was not signed in at the gateway") || !strings.Contains(err.Error(), "100-006") {
		t.Fatalf("signout with a GUID the gateway rejects = %v", err)
	}
	if _, ok := session("102"); ok {
		t.Fatal("the rejected session is still registered")
	}
	inv, _ := json.Marshal(events.Session{GUID: "x.AgentGateway0", State: events.SessionInvalid, Reason: "retcode 100-006"})
	if _, err := kv.Put(ctx, "103", inv); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"signout", "--agent", "103"}, &out)
	if err == nil || !strings.Contains(err.Error(), "session was invalid, the gateway had rejected its GUID (retcode 100-006)") {
		t.Fatalf("signout of an invalid session = %v", err)
	}
	if strings.Contains(out.String(), "AgentGateway") {
		t.Fatalf("output holds a GUID: %s", out.String())
	}
}
