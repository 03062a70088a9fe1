package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/callcontrol/callcontrol/admin"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
)

// readmeArgs returns the arguments of the README's example line that
// starts with prefix, without its trailing "# comment".
func readmeArgs(t *testing.T, prefix string) []string {
	t.Helper()
	args := readmeCommand(t, prefix)
	if i := slices.Index(args, "#"); i >= 0 {
		args = args[:i]
	}
	return args
}

// readmeLine returns the README line that starts with prefix.
func readmeLine(t *testing.T, prefix string) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("README.md has no line starting with %q", prefix)
	return ""
}

// `callcontrol agents` (the README's example) lists every agent of the
// registry and the call bucket with its session, its poller and its last
// call: the call ID in full, the parties masked, in the table and in JSON.
func TestAgentsCommand(t *testing.T) {
	natsURL, js := testJetStream(t, worker.Config{})
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{PollHold: 300 * time.Millisecond})
	t.Setenv("CALLCONTROL_NATS_URL", natsURL)
	gwFlags := []string{"--gateway-url", gwURL, "--gateway-ca", ca}
	logs := &testenv.SyncBuffer{}
	stderr = logs
	t.Cleanup(func() { stderr = os.Stderr })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var out bytes.Buffer
	for _, a := range []string{"101", "102"} {
		if err := run(ctx, append([]string{"signin", "--agent", a, "--authmode", "1"}, gwFlags...), &out); err != nil {
			t.Fatal(err)
		}
	}
	kv, _ := js.KeyValue(ctx, events.BucketSessions)
	inv, _ := json.Marshal(events.Session{GUID: "x.AgentGateway9", State: events.SessionInvalid, Reason: "retcode 100-006"})
	if _, err := kv.Put(ctx, "103", inv); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		args := append([]string{"poller", "--poll-lease-ttl", "3s", "--gateway-poll-timeout", "2s", "--poll-gap", "50ms"}, gwFlags...)
		if err := run(ctx, args, &bytes.Buffer{}); err != nil {
			t.Errorf("poller: %v", err)
		}
	})
	callID, err := sim.StartCall(101, "5550101")
	if err != nil {
		t.Fatal(err)
	}
	var views []admin.Agent
	var raw string
	testenv.WaitFor(t, 30*time.Second, "agent 101's call listed", func() bool {
		var b bytes.Buffer
		if err := run(ctx, []string{"agents", "--json"}, &b); err != nil {
			t.Fatal(err)
		}
		raw = b.String()
		views = nil
		if err := json.Unmarshal(b.Bytes(), &views); err != nil {
			t.Fatal(err)
		}
		return len(views) == 3 && views[0].Call != nil && views[0].Call.CallID == callID && views[0].ObservedAgeMillis != nil
	})
	v101, v102, v103 := views[0], views[1], views[2]
	if v101.Session != "active" || v101.Poller == "" || v101.Call.Phase != events.CallTalking ||
		!slices.Equal(v101.Call.Parties, []string{"***0101"}) || v101.OnCallMillis < 0 {
		t.Errorf("agent 101 = %+v", v101)
	}
	if v102.Session != "active" || v102.Call != nil || v102.State == nil || v102.State.Owner != v101.Poller {
		t.Errorf("agent 102 = %+v", v102)
	}
	if v103.Session != "invalid" || v103.SessionReason != "retcode 100-006" || v103.Poller != "" || v103.State != nil {
		t.Errorf("agent 103 = %+v", v103)
	}
	if strings.Contains(raw, "5550101") || strings.Contains(raw, "AgentGateway") {
		t.Errorf("JSON holds a number or a GUID: %s", raw)
	}

	var table bytes.Buffer
	if err := run(ctx, append([]string{"agents"}, readmeArgs(t, "go run ./cmd/callcontrol agents")...), &table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if want := strings.Fields(readmeLine(t, "AGENT ")); len(lines) != 4 || !slices.Equal(strings.Fields(lines[0]), want) {
		t.Fatalf("table header is not the README's %q:\n%s", want, table.String())
	}
	row := strings.Fields(lines[1])
	if row[0] != "101" || row[1] != "active" || row[3] != "1" || row[4] != callID || row[5] != "talking" || row[6] != "***0101" {
		t.Errorf("agent 101's row = %q", row)
	}
	if strings.Contains(table.String(), "5550101") || !strings.Contains(lines[3], "invalid (retcode 100-006)") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := run(ctx, []string{"agents", "--agent", "104"}, &table); err == nil || !strings.Contains(err.Error(), "agent 104") {
		t.Errorf("agents --agent 104 = %v, want an error naming the agent", err)
	}
}
