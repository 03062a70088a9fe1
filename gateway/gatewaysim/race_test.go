package gatewaysim

import (
	"net/http"
	"testing"
	"time"
)

func TestDisconnectRecordsCallGeneration(t *testing.T) {
	b, guid := callSetup(t, Config{})
	first := b.sim.Calls(101)[0]
	wantCode(t, "first call", b.disconnect(101, guid, "5550100"), "0")
	second, err := b.sim.Redial(101, "")
	if err != nil || second == first.CallID {
		t.Fatalf("Redial = %q, %v; want a new call id (first %s)", second, err, first.CallID)
	}
	wantCode(t, "redialed call", b.disconnect(101, guid, "5550100"), "0")
	recs := b.sim.Disconnects()
	if len(recs) != 2 {
		t.Fatalf("records %+v", recs)
	}
	if r := recs[0]; r.CallID != first.CallID || r.CallGeneration != 1 || r.Redial || !r.CallBegan.Equal(first.Began) {
		t.Fatalf("first record %+v, want call %+v", r, first)
	}
	if r := recs[1]; r.CallID != second || r.CallGeneration != 2 || !r.Redial || r.CallBegan.IsZero() {
		t.Fatalf("second record %+v, want generation 2 of redial %s", r, second)
	}
	if st := b.sim.Stats(); st.Redials != 1 || st.ExecutedOnRedial != 1 || st.Executed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRedialDelayAtRunTime(t *testing.T) {
	b, guid := callSetup(t, Config{})
	b.sim.SetRedialAfter(10 * time.Millisecond)
	b.disconnect(101, guid, "5550100")
	waitFor(t, "the automatic redial", func() bool {
		c := b.sim.Calls(101)
		return len(c) == 1 && c[0].Redial && c[0].Generation == 2
	})
	b.sim.SetRedialAfter(0)
	b.disconnect(101, guid, "5550100")
	b.sim.mu.Lock()
	pending := b.sim.agents[101].redialTimer != nil || len(b.sim.timers) != 0
	b.sim.mu.Unlock()
	if pending || b.sim.RedialAfter() != 0 {
		t.Fatal("a redial is pending after SetRedialAfter(0)")
	}
}

func TestRedialCancelsPendingRedial(t *testing.T) {
	b, guid := callSetup(t, Config{RedialAfter: time.Hour})
	b.disconnect(101, guid, "5550100")
	if _, err := b.sim.Redial(101, ""); err != nil {
		t.Fatal(err)
	}
	b.sim.mu.Lock()
	pending := len(b.sim.timers)
	b.sim.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d timers pending after an on-demand redial", pending)
	}
	if _, err := b.sim.Redial(101, ""); err != ErrBusy {
		t.Fatalf("redial during the call: %v, want ErrBusy", err)
	}
	b.sim.SignIn(102)
	if _, err := b.sim.Redial(102, ""); err != ErrNoCustomer {
		t.Fatalf("redial without a released customer: %v", err)
	}
}

func TestEndCall(t *testing.T) {
	b, guid := callSetup(t, Config{})
	b.drain(101, guid)
	id, err := b.sim.EndCall(101, "")
	if err != nil || id == "" || b.sim.Calls(101) != nil {
		t.Fatalf("EndCall = %q, %v; calls %+v", id, err, b.sim.Calls(101))
	}
	wantEvents(t, "agent", b.events(101, guid), "Customer_Release:5550100", "Call_Release")
	if _, err := b.sim.EndCall(101, ""); err != ErrNoCall {
		t.Fatalf("EndCall without a call: %v", err)
	}
	if b.sim.Executed() != 0 {
		t.Fatal("EndCall counted as executed")
	}
}

func TestAdminRaceRoutes(t *testing.T) {
	b, guid := callSetup(t, Config{})
	var calls []CallState
	if code := b.admin(http.MethodGet, "/simulator/agents/101/calls", "", &calls); code != 200 || len(calls) != 1 || calls[0].Generation != 1 {
		t.Fatalf("calls: %d %+v", code, calls)
	}
	var ended struct{ Callid string }
	if code := b.admin(http.MethodPost, "/simulator/agents/101/endcall", "", &ended); code != 200 || ended.Callid != calls[0].CallID {
		t.Fatalf("endcall: %d %+v", code, ended)
	}
	if code := b.admin(http.MethodPost, "/simulator/agents/101/endcall", `{"callid":"1-1"}`, nil); code != http.StatusConflict {
		t.Fatalf("endcall of an unknown call: %d", code)
	}
	var redial struct{ Callid string }
	if code := b.admin(http.MethodPost, "/simulator/agents/101/redial", "", &redial); code != 200 || redial.Callid == ended.Callid {
		t.Fatalf("redial: %d %+v", code, redial)
	}
	wantCode(t, "release of the redialed call", b.disconnect(101, guid, "5550100"), "0")
	var recs []map[string]any
	b.admin(http.MethodGet, "/simulator/disconnects", "", &recs)
	if r := recs[0]; r["call_id"] != redial.Callid || r["call_generation"] != 2.0 || r["redial"] != true || r["call_began"] == nil {
		t.Fatalf("disconnect record %v", r)
	}
	var out struct{ Callid string }
	if code := b.admin(http.MethodPost, "/simulator/agents/101/callout", `{"called":"5550199"}`, &out); code != 200 || out.Callid == "" {
		t.Fatalf("callout: %d %+v", code, out)
	}
	var delay redialDelay
	if code := b.admin(http.MethodPut, "/simulator/redial", `{"after_ms":1500}`, &delay); code != 200 || delay.AfterMS != 1500 || b.sim.RedialAfter() != 1500*time.Millisecond {
		t.Fatalf("put redial: %d %+v", code, delay)
	}
	if code := b.admin(http.MethodPut, "/simulator/redial", `{"after_ms":-1}`, nil); code != http.StatusBadRequest {
		t.Fatalf("negative delay: %d", code)
	}
	b.admin(http.MethodGet, "/simulator/redial", "", &delay)
	if delay.AfterMS != 1500 {
		t.Fatalf("get redial %+v", delay)
	}
}
