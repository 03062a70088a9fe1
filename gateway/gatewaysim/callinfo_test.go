package gatewaysim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// callResultOf decodes a call-data result object.
func callResultOf(t *testing.T, rep wireReply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rep.Result, &m); err != nil || m == nil {
		t.Fatalf("result %s: want an object (%v)", rep.Result, err)
	}
	return m
}

func (b *bundle) query(path, guid string) wireReply {
	b.t.Helper()
	_, rep := b.must(http.MethodGet, Prefix+path, guid, nil)
	return rep
}

func TestCallInfoQueries(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signIn(101)
	rep := b.query("/calldata/101/callinfo?isNoContainLastCall=true", guid)
	if wantCode(t, "no call", rep.RetCode, "0"); len(rep.Result) != 0 {
		t.Fatalf("no call: result %s", rep.Result)
	}
	wantCode(t, "holdlist without held call", b.query("/calldata/101/holdlist", guid).RetCode, rcNoHeldCall)

	id, _ := b.sim.StartCall(101, "5550100")
	m := callResultOf(t, b.query("/calldata/101/callinfo", guid))
	if m["callid"] != id || m["caller"] != "5550100" || m["called"] != "101" || m["callfeature"] != 0.0 ||
		m["begintime"].(float64) <= 0 || m["endtime"] != 0.0 {
		t.Fatalf("current call %v, want %s from 5550100", m, id)
	}

	b.sim.Hold(101)
	if rep := b.query("/calldata/101/callinfo?isNoContainLastCall=true", guid); len(rep.Result) != 0 {
		t.Fatalf("held call reported as current: %s", rep.Result)
	}
	var held []map[string]any
	rep = b.query("/calldata/101/holdlist", guid)
	if err := json.Unmarshal(rep.Result, &held); err != nil || len(held) != 1 || held[0]["callid"] != id {
		t.Fatalf("holdlist %s (%v), want %s", rep.Result, err, id)
	}
	if m := callResultOf(t, b.query("/calldata/101/callinfobycallid/"+id, guid)); m["callid"] != id {
		t.Fatalf("by call id: %v", m)
	}

	b.sim.CustomerHangup(101, "5550100")
	if m := callResultOf(t, b.query("/calldata/101/callinfo", guid)); m["callid"] != id || m["endtime"].(float64) <= 0 {
		t.Fatalf("without isNoContainLastCall: %v, want the ended call with endtime", m)
	}
	for _, path := range []string{"/calldata/101/callinfo?isNoContainLastCall=true", "/calldata/101/callinfobycallid/" + id} {
		if rep := b.query(path, guid); rep.RetCode != "0" || len(rep.Result) != 0 {
			t.Fatalf("%s after the call ended: %s %s", path, rep.RetCode, rep.Result)
		}
	}
	wantCode(t, "bad guid", b.query("/calldata/101/callinfo", "nope").RetCode, rcNotSignedIn)
	wantCode(t, "bad agent", b.query("/calldata/100/callinfo", guid).RetCode, rcBadParam)
	if n := b.sim.Stats().CallInfoQueries; n != 9 {
		t.Fatalf("CallInfoQueries %d, want 9 (authenticated ones)", n)
	}
}

func TestCallInfoFaultsOnlyWhenQueries(t *testing.T) {
	b, guid := callSetup(t, Config{})
	b.sim.SetFaults(Faults{Rate: 1, Kinds: []Fault{FaultRetCode}})
	wantCode(t, "plan of disconnects", b.query("/calldata/101/callinfo", guid).RetCode, "0")
	b.sim.SetFaults(Faults{Rate: 1, Kinds: []Fault{FaultRetCode}, Queries: true})
	wantCode(t, "plan with queries", b.query("/calldata/101/callinfo", guid).RetCode, rcInternal)
	b.sim.SetFaults(Faults{Rate: 1, Kinds: []Fault{Fault5xx}, Queries: true})
	if resp, _ := b.must(http.MethodGet, Prefix+"/calldata/101/holdlist", guid, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("5xx fault on holdlist: HTTP %d", resp.StatusCode)
	}
}

func TestCallout(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signIn(101)
	b.drain(101, guid)
	_, rep := b.must(http.MethodPut, Prefix+"/voicecall/101/callout", guid, map[string]any{"called": "5550177", "caller": "88880000", "skillid": 1})
	var id string
	if wantCode(t, "callout", rep.RetCode, "0"); json.Unmarshal(rep.Result, &id) != nil || id == "" {
		t.Fatalf("callout result %s, want the call id", rep.Result)
	}
	alert, talk := b.nextEvent(101, guid), b.nextEvent(101, guid)
	var info map[string]any
	json.Unmarshal(talk.Content, &info)
	if alert.EventType != EventCustomerAlerting || talk.EventType != EventTalking ||
		info["feature"] != 7.0 || info["callid"] != id || info["called"] != "5550177" || info["caller"] != "88880000" {
		t.Fatalf("events %s, %s %v", alert.EventType, talk.EventType, info)
	}
	if m := callResultOf(t, b.query("/calldata/101/callinfo", guid)); m["callfeature"] != 7.0 || m["called"] != "5550177" {
		t.Fatalf("callinfo %v", m)
	}
	_, rep = b.must(http.MethodPut, Prefix+"/voicecall/101/callout", guid, map[string]any{"called": "5550178"})
	wantCode(t, "callout while talking", rep.RetCode, rcInternal)
	wantCode(t, "release", b.disconnect(101, guid, "5550177"), "0")
	_, rep = b.must(http.MethodPut, Prefix+"/voicecall/101/callout", guid, map[string]any{"called": "55-1"})
	wantCode(t, "bad called", rep.RetCode, rcBadCalled)
	if _, err := b.sim.Callout(101, "x", ""); err != ErrBadNumber {
		t.Fatalf("Callout(x): %v", err)
	}
}

func TestLogoutRefusedDuringCall(t *testing.T) {
	b, guid := callSetup(t, Config{})
	b.drain(101, guid)
	_, rep := b.must(http.MethodDelete, agentPath("/onlineagent/101/logout"), guid, nil)
	wantCode(t, "logout during a call", rep.RetCode, rcLogoutState)
	b.sim.Hold(101)
	_, rep = b.must(http.MethodDelete, agentPath("/onlineagent/101/logout"), guid, nil)
	wantCode(t, "logout with a held call", rep.RetCode, rcLogoutState)
	wantCode(t, "still signed in", b.query("/calldata/101/holdlist", guid).RetCode, "0")
	_, rep = b.must(http.MethodDelete, agentPath("/onlineagent/101/forcelogout"), guid, nil)
	wantCode(t, "forcelogout", rep.RetCode, "0")
	if calls := b.sim.Calls(101); calls != nil {
		t.Fatalf("calls after forcelogout: %+v", calls)
	}
	guid = b.signIn(101)
	if _, rep = b.must(http.MethodDelete, agentPath("/onlineagent/101/logout"), guid, nil); rep.RetCode != "0" {
		t.Fatalf("logout without a call: %s", rep.RetCode)
	}
}

func TestForceLogoutRaisesCallRelease(t *testing.T) {
	b, guid := callSetup(t, Config{PollHold: 5 * time.Second})
	b.drain0(101, guid)
	b.must(http.MethodDelete, agentPath("/onlineagent/101/forcelogout"), guid, nil)
	b.sim.mu.Lock()
	var types []string
	for _, ev := range b.sim.agents[101].queue {
		types = append(types, ev.EventType)
	}
	b.sim.mu.Unlock()
	if len(types) != 2 || types[0] != EventCallRelease || types[1] != EventShutdownService {
		t.Fatalf("queued events %v, want Call_Release, ShutdownService", types)
	}
}

// drain0 pops the queued events of an agent without polling (for tests
// whose poll hold is long).
func (b *bundle) drain0(id int, _ string) {
	b.sim.mu.Lock()
	defer b.sim.mu.Unlock()
	b.sim.agents[id].queue = nil
}
