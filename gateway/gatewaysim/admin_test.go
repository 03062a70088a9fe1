package gatewaysim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// admin sends an admin request and decodes the JSON reply into out.
func (b *bundle) admin(method, path, body string, out any) int {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func TestAdminAPI(t *testing.T) {
	b := setup(t, Config{})
	var call struct{ Callid string }
	if code := b.admin(http.MethodPost, "/simulator/agents/101/calls", `{"customer":"5550100"}`, &call); code != 200 || call.Callid == "" {
		t.Fatalf("calls: %d %+v", code, call)
	}
	var in struct{ GUID string }
	if code := b.admin(http.MethodPost, "/simulator/agents/101/signin", "", &in); code != 200 || !strings.HasSuffix(in.GUID, ".AgentGateway0") {
		t.Fatalf("signin: %d %+v", code, in)
	}
	// The forced sign-in kept the call.
	wantCode(t, "disconnect", b.disconnect(101, in.GUID, "5550100"), "0")
	b.admin(http.MethodPost, "/simulator/agents/101/calls", `{"customer":"5550101"}`, nil)
	if code := b.admin(http.MethodPost, "/simulator/agents/101/hangup", `{"number":"5550101"}`, nil); code != 200 {
		t.Fatalf("hangup: %d", code)
	}
	if code := b.admin(http.MethodPost, "/simulator/agents/101/hangup", `{"number":"5550101"}`, nil); code != http.StatusConflict {
		t.Fatalf("second hangup: %d", code)
	}
	if code := b.admin(http.MethodPost, "/simulator/agents/101/calls", `{"customer":"x"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("bad customer: %d", code)
	}
	if code := b.admin(http.MethodPost, "/simulator/agents/999/hold", "", nil); code != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", code)
	}

	var st map[string]int64
	b.admin(http.MethodGet, "/simulator/stats", "", &st)
	for k, v := range map[string]int64{"executed": 1, "disconnects": 1, "overlaps": 0, "concurrent_polls": 0, "signed_out_by_timeout": 0, "agents": 1} {
		if got, ok := st[k]; !ok || got != v {
			t.Errorf("stats[%s] = %d (present %v), want %d", k, got, ok, v)
		}
	}
	var recs []map[string]any
	b.admin(http.MethodGet, "/simulator/disconnects", "", &recs)
	if len(recs) != 1 || recs[0]["retcode"] != "0" || recs[0]["executed"] != true {
		t.Fatalf("disconnects %v", recs)
	}
}

func TestAdminFaults(t *testing.T) {
	b := setup(t, Config{})
	var f Faults
	if code := b.admin(http.MethodPut, "/simulator/faults", `{"rate":1,"kinds":["retcode"],"retcodes":["100-007"],"seed":7}`, &f); code != 200 {
		t.Fatalf("put faults: %d", code)
	}
	if f.Rate != 1 || f.Seed != 7 || len(f.Kinds) != 1 || f.RetCodes[0] != "100-007" {
		t.Fatalf("faults %+v", f)
	}
	guid := b.signIn(101)
	b.sim.StartCall(101, "5550100")
	wantCode(t, "faulted", b.disconnect(101, guid, "5550100"), "100-007")
	if code := b.admin(http.MethodPut, "/simulator/faults", `{"rate":1,"kinds":["boom"]}`, nil); code != http.StatusBadRequest {
		t.Fatalf("bad kind: %d", code)
	}
	b.admin(http.MethodPut, "/simulator/faults", `{"rate":0}`, nil)
	wantCode(t, "no faults", b.disconnect(101, guid, "5550100"), "0")
}

func TestAdminInnerHelpAndConfJoin(t *testing.T) {
	b := setup(t, Config{})
	b.admin(http.MethodPost, "/simulator/agents/101/calls", `{"customer":"5550100"}`, nil)
	guid := b.signIn(101)
	if code := b.admin(http.MethodPost, "/simulator/agents/101/innerhelp", `{"helper":202}`, nil); code != 200 {
		t.Fatalf("innerhelp: %d", code)
	}
	wantCode(t, "held customer", b.disconnect(101, guid, "5550100"), rcNotInLastCall)
	if code := b.admin(http.MethodPost, "/simulator/agents/101/confjoin", "", nil); code != 200 {
		t.Fatalf("confjoin: %d", code)
	}
	wantCode(t, "customer in conference", b.disconnect(101, guid, "5550100"), "0")
}
