package main

import (
	"bytes"
	"context"
	"github.com/callcontrol/callcontrol/admin"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
)

// buildBinary compiles callcontrol once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callcontrol")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// A worker process killed with SIGKILL while the gateway is executing its
// POST: the redelivered command is not executed a second time and ends
// accepted; the killed worker's logs hold no GUID and no unmasked number.
func TestWorkerProcessKilledMidPOST(t *testing.T) {
	bin := buildBinary(t)
	natsURL, js := testJetStream(t, worker.Config{AckWait: 2 * time.Second, LeaseTTL: 2 * time.Second})
	sim, gwURL, caFile := testGateway(t, gatewaysim.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const agent, number = 301, "13800001234"
	guid, err := sim.SignIn(agent)
	if err != nil {
		t.Fatal(err)
	}
	if err := newAdmin(js).RegisterSession(ctx, agent, guid, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.StartCall(agent, number); err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.FaultTimeoutAfter}})

	start := func() (*exec.Cmd, *testenv.SyncBuffer) {
		var logs testenv.SyncBuffer
		c := exec.Command(bin, "worker", "--nats-url", natsURL, "--gateway-url", gwURL,
			"--gateway-ca", caFile, "--ack-wait", "2s", "--lease-ttl", "2s", "--gateway-timeout", "20s")
		c.Stderr = &logs
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		return c, &logs
	}
	first, firstLogs := start()
	cmd := events.DisconnectCommand{CommandID: "kill-9", AgentID: agent, Number: number}
	if err := newAdmin(js).Publish(ctx, cmd, ""); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 15*time.Second, "the POST to be executed", func() bool { return sim.Executed() == 1 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	sim.SetFaults(gatewaysim.Faults{})

	results, err := newAdmin(js).Tail(ctx, events.StreamResults, events.SubjectResults+".>", true)
	if err != nil {
		t.Fatal(err)
	}
	defer results.Stop()
	_, secondLogs := start()
	var res events.Result
	if err := admin.Await(ctx, results, cmd.CommandID, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != events.StatusAccepted {
		t.Fatalf("result %+v, want accepted", res)
	}
	if got := sim.Executed(); got != 1 {
		t.Fatalf("executed %d disconnects, want 1", got)
	}
	testenv.WaitFor(t, 5*time.Second, "the second worker's log line", func() bool {
		return bytes.Contains([]byte(secondLogs.String()), []byte(`"outcome":"accepted"`))
	})
	for _, logs := range []*testenv.SyncBuffer{firstLogs, secondLogs} {
		out := logs.String()
		if bytes.Contains([]byte(out), []byte(guid)) || bytes.Contains([]byte(out), []byte(number)) {
			t.Errorf("worker log holds a GUID or an unmasked number:\n%s", out)
		}
	}
}
