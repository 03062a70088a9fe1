package gatewaysim

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestFaultKinds(t *testing.T) {
	tests := []struct {
		kind      Fault
		clientErr bool
		executed  int64
	}{
		{Fault5xx, false, 0},
		{FaultReset, true, 0},
		{FaultTimeout, true, 0},
		{FaultRetCode, false, 0},
		{FaultResetAfter, true, 1},
		{FaultTimeoutAfter, true, 1},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			b, guid := callSetup(t, Config{})
			b.client.Timeout = 300 * time.Millisecond
			b.sim.SetFaults(Faults{Rate: 1, Kinds: []Fault{tt.kind}, RetCodes: []string{"000-004"}})
			resp, rep, err := b.do(http.MethodPost, agentPath("/voicecall/101/disconnect/5550100"), guid, nil)
			if (err != nil) != tt.clientErr {
				t.Fatalf("client error %v, want error %v", err, tt.clientErr)
			}
			checkFaultReply(t, tt.kind, resp, rep)
			if n := b.sim.Executed(); n != tt.executed {
				t.Fatalf("Executed %d, want %d", n, tt.executed)
			}
			rec := b.sim.Disconnects()[0]
			if rec.Fault != tt.kind || rec.Executed != (tt.executed == 1) {
				t.Fatalf("record %+v", rec)
			}
			// The faulted request has left its in-flight window: the
			// client's retry is answered normally, not with 000-007.
			b.sim.SetFaults(Faults{})
			want := map[bool]string{true: rcNoCall, false: "0"}[tt.executed == 1]
			wantCode(t, "retry", b.disconnect(101, guid, "5550100"), want)
			if n := b.sim.Overlaps(); n != 0 {
				t.Fatalf("Overlaps %d", n)
			}
		})
	}
}

func checkFaultReply(t *testing.T, kind Fault, resp *http.Response, rep wireReply) {
	t.Helper()
	switch kind {
	case Fault5xx:
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "0" || resp.Header.Get("Content-Type") != "text/html" {
			t.Fatalf("5xx reply: %d %v", resp.StatusCode, resp.Header)
		}
	case FaultRetCode:
		wantCode(t, "retcode fault", rep.RetCode, "000-004")
	}
}

func TestFaultsDeterministicAndDefaults(t *testing.T) {
	draw := func(f Faults) []Fault {
		var p faultPlan
		p.set(f)
		var out []Fault
		for range 200 {
			k, _ := p.roll()
			out = append(out, k)
		}
		return out
	}
	f := Faults{Rate: 0.3, Seed: 42}
	a, b := draw(f), draw(f)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different draws")
	}
	n := 0
	for _, k := range a {
		if k != "" {
			n++
			if !slices.Contains([]Fault{Fault5xx, FaultReset, FaultTimeout}, k) {
				t.Fatalf("kind %q not a default", k)
			}
		}
	}
	if n < 30 || n > 90 {
		t.Fatalf("%d faults in 200 draws at rate 0.3", n)
	}
	if got := draw(Faults{}); slices.ContainsFunc(got, func(k Fault) bool { return k != "" }) {
		t.Fatal("zero plan injected a fault")
	}
}

func TestFaultsValidate(t *testing.T) {
	bad := []Faults{{Rate: -0.1}, {Rate: 1.5}, {Rate: 0.5, Kinds: []Fault{"boom"}}}
	for _, f := range bad {
		if f.Validate() == nil {
			t.Errorf("%+v: want an error", f)
		}
	}
	if err := (Faults{Rate: 1, Kinds: allFaults}).Validate(); err != nil {
		t.Fatal(err)
	}
}
