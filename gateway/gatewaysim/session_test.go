package gatewaysim

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var setGUIDRe = regexp.MustCompile(`^JSESSIONID=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.AgentGateway0$`)

func TestSignInSetGUIDAndResult(t *testing.T) {
	b := setup(t, Config{})
	resp, rep := b.must(http.MethodPut, agentPath("/onlineagent/101"), "", map[string]any{"password": "x", "status": 4})
	wantCode(t, "sign-in", rep.RetCode, "0")
	if h := resp.Header.Get("Set-GUID"); !setGUIDRe.MatchString(h) {
		t.Fatalf("Set-GUID %q", h)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, f := range []string{`"serverName":"AgentGateway"`, `"mediatype":"TTF"`, `"workno":"101"`, `"loginTime":`, `"vdnid":`} {
		if !strings.Contains(string(rep.Result), f) {
			t.Errorf("result %s lacks %s", rep.Result, f)
		}
	}
	guid := strings.TrimPrefix(resp.Header.Get("Set-GUID"), setGUIDPrefix)
	for _, want := range []string{EventInService, EventReady} {
		if ev := b.nextEvent(101, guid); ev.EventType != want || ev.WorkNo != "101" || ev.EventGenTime == 0 {
			t.Fatalf("event %+v, want %s", ev, want)
		}
	}
}

func TestSignInErrors(t *testing.T) {
	b := setup(t, Config{})
	b.sim.AddAgent(102, "secret")
	tests := []struct {
		name, path string
		body       any
		want       string
	}{
		{"bad agent id", "/onlineagent/99", map[string]any{"password": ""}, rcBadParam},
		{"agent id too big", "/onlineagent/60000", map[string]any{"password": ""}, rcBadParam},
		{"no body", "/onlineagent/103", nil, rcSignInParam},
		{"wrong password", "/onlineagent/102", map[string]any{"password": "nope"}, rcBadPassword},
		{"right password", "/onlineagent/102", map[string]any{"password": "secret"}, rcOK},
		{"already signed in", "/onlineagent/102", map[string]any{"password": "secret"}, rcAlreadyIn},
	}
	for _, tt := range tests {
		_, rep := b.must(http.MethodPut, Prefix+tt.path, "", tt.body)
		wantCode(t, tt.name, rep.RetCode, tt.want)
	}
}

func TestForceLoginInvalidatesOldGUID(t *testing.T) {
	b := setup(t, Config{})
	old := b.signIn(101)
	_, rep := b.must(http.MethodPut, agentPath("/onlineagent/101"), "", map[string]any{"password": "pw"})
	wantCode(t, "second sign-in", rep.RetCode, rcAlreadyIn)
	cur := b.signIn(101) // forcelogin
	if cur == old {
		t.Fatal("forcelogin returned the old GUID")
	}
	_, rep = b.poll(101, old)
	wantCode(t, "poll with old GUID", rep.RetCode, rcNotSignedIn)
	wantCode(t, "disconnect with old GUID", b.disconnect(101, old, "5550100"), rcNotSignedIn)
	wantCode(t, "disconnect with new GUID", b.disconnect(101, cur, "5550100"), rcNoCall)
}

func TestGuidChecks(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signIn(101)
	wantCode(t, "missing guid", b.disconnect(101, "", "5550100"), rcNoPermission)
	wantCode(t, "unknown guid", b.disconnect(101, "nope.AgentGateway0", "5550100"), rcNotSignedIn)
	wantCode(t, "guid of another agent", b.disconnect(102, guid, "5550100"), rcNotSignedIn)
	_, rep := b.poll(101, "")
	wantCode(t, "poll without guid", rep.RetCode, rcNoPermission)
}

func TestSignOut(t *testing.T) {
	for _, path := range []string{"logout", "forcelogout"} {
		b := setup(t, Config{})
		guid := b.signIn(101)
		b.drain(101, guid)
		_, rep := b.must(http.MethodDelete, agentPath("/onlineagent/101/%s", path), guid, nil)
		wantCode(t, path, rep.RetCode, "0")
		_, rep = b.poll(101, guid)
		wantCode(t, path+": poll after sign-out", rep.RetCode, rcNotSignedIn)
		guid = b.signIn(101) // a fresh session starts with a fresh queue
		if ev := b.nextEvent(101, guid); ev.EventType != EventInService {
			t.Fatalf("%s: first event after new sign-in %s", path, ev.EventType)
		}
	}
}

func TestHeldPollGetsShutdownService(t *testing.T) {
	b := setup(t, Config{PollHold: 5 * time.Second})
	guid := b.signIn(101)
	b.nextEvent(101, guid)
	b.nextEvent(101, guid)
	got := make(chan wireReply, 1)
	go func() {
		_, rep, _ := b.do(http.MethodGet, agentPath("/agentevent/101"), guid, nil)
		got <- rep
	}()
	waitFor(t, "poll held", func() bool { return b.sim.Polls(101) == 3 })
	_, rep := b.must(http.MethodDelete, agentPath("/onlineagent/101/forcelogout"), guid, nil)
	wantCode(t, "forcelogout", rep.RetCode, "0")
	rep = <-got
	if rep.Event == nil || rep.Event.EventType != EventShutdownService || !strings.Contains(string(rep.Event.Content), "loginTime") {
		t.Fatalf("held poll got %+v", rep)
	}
}

func TestAuthMode2Rotation(t *testing.T) {
	clock := newFakeClock()
	b := setup(t, Config{AuthMode: 2, GUIDInterval: 50 * time.Millisecond, GUIDTimeout: 100 * time.Millisecond, Now: clock.Now})
	old := b.signIn(101)
	resp, _ := b.poll(101, old)
	if h := resp.Header.Get("Set-GUID"); h != "" {
		t.Fatalf("rotated before the interval: %q", h)
	}
	clock.Advance(60 * time.Millisecond)
	resp, _ = b.poll(101, old)
	h := resp.Header.Get("Set-GUID")
	if !setGUIDRe.MatchString(h) {
		t.Fatalf("poll after interval: Set-GUID %q", h)
	}
	cur := strings.TrimPrefix(h, setGUIDPrefix)
	wantCode(t, "new guid", b.disconnect(101, cur, "1"), rcNoCall)
	wantCode(t, "old guid within timeout", b.disconnect(101, old, "1"), rcNoCall)
	clock.Advance(50 * time.Millisecond) // old issued 110ms ago, new 50ms ago
	wantCode(t, "old guid after timeout", b.disconnect(101, old, "1"), rcNotSignedIn)
	wantCode(t, "new guid still valid", b.disconnect(101, cur, "1"), rcNoCall)
}

func TestAuthMode2RealClock(t *testing.T) {
	b := setup(t, Config{AuthMode: 2, GUIDInterval: 50 * time.Millisecond, GUIDTimeout: 150 * time.Millisecond})
	guid := b.signIn(101)
	first := guid
	for rotations := 0; rotations < 2; {
		resp, rep := b.poll(101, guid) // empty polls are held 100ms
		wantCode(t, "poll", rep.RetCode, "0")
		if h := resp.Header.Get("Set-GUID"); h != "" {
			guid = strings.TrimPrefix(h, setGUIDPrefix)
			rotations++
		}
	}
	waitFor(t, "first GUID to expire", func() bool { return b.disconnect(101, first, "1") == rcNotSignedIn })
}

func TestAuthMode1StaticGUID(t *testing.T) {
	clock := newFakeClock()
	b := setup(t, Config{Now: clock.Now})
	guid := b.signIn(101)
	clock.Advance(time.Hour)
	resp, rep := b.poll(101, guid)
	if resp.Header.Get("Set-GUID") != "" || rep.RetCode != "0" {
		t.Fatalf("static mode: Set-GUID %q retcode %s", resp.Header.Get("Set-GUID"), rep.RetCode)
	}
}

func TestAuthModeDefault(t *testing.T) {
	for cfg, want := range map[int]int{0: 1, 1: 1, 2: 2} {
		s := New(Config{AuthMode: cfg})
		if got := s.AuthMode(); got != want {
			t.Errorf("New(AuthMode %d).AuthMode() = %d, want %d", cfg, got, want)
		}
		s.Close()
	}
}

func TestNoPollSignOut(t *testing.T) {
	clock := newFakeClock()
	b := setup(t, Config{NoPollSignOut: 2 * time.Minute, Now: clock.Now})
	guid := b.signIn(101)
	clock.Advance(time.Minute)
	b.nextEvent(101, guid) // heartbeat
	clock.Advance(90 * time.Second)
	wantCode(t, "after a heartbeat", b.disconnect(101, guid, "1"), rcNoCall)
	clock.Advance(3 * time.Minute)
	waitFor(t, "background sign-out", func() bool { return b.sim.SignedOut() == 1 })
	wantCode(t, "after no poll", b.disconnect(101, guid, "1"), rcNotSignedIn)
	if n := b.sim.SignedOut(); n != 1 {
		t.Fatalf("SignedOut %d", n)
	}
}

func TestNoPollSignOutLazy(t *testing.T) {
	clock := newFakeClock()
	// A long sweep interval (1s) cannot beat the request below.
	b := setup(t, Config{NoPollSignOut: time.Hour, Now: clock.Now})
	guid := b.signIn(101)
	clock.Advance(2 * time.Hour)
	wantCode(t, "lazy check", b.disconnect(101, guid, "1"), rcNotSignedIn)
	if n := b.sim.SignedOut(); n != 1 {
		t.Fatalf("SignedOut %d", n)
	}
}
