package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/callcontrol/callcontrol/admin"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
)

// testPort returns a loopback port nothing listens on right now.
func testPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A worker started while NATS is down waits for it (its retries logged
// as JSON, /readyz 503 meanwhile), connects when it comes up, and
// executes a command.
func TestWorkerWaitsForNATSAtStart(t *testing.T) {
	natsPort, healthPort := testPort(t), testPort(t)
	sim, gwURL, caFile := testGateway(t, gatewaysim.Config{})
	var logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wctx, stopWorker := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(wctx, []string{"worker", "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--gateway-url", gwURL,
			"--gateway-ca", caFile, "--health-listen", fmt.Sprintf("127.0.0.1:%d", healthPort), "--log-format", "json"}, io.Discard)
	}()
	t.Cleanup(func() {
		stopWorker()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	readyz := func() int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.WaitFor(t, 10*time.Second, "a logged connection retry", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the worker ended while NATS was down: %v\n%s", err, logs.String())
		default:
		}
		return strings.Contains(logs.String(), `"attempt":2`)
	})
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("a log line is not JSON: %s", line)
		}
	}
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before NATS is up = %d, want 503", code)
	}

	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: natsPort, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	testenv.WaitFor(t, 30*time.Second, "/readyz to answer 200", func() bool { return readyz() == http.StatusOK })
	_, js := testenv.Connect(t, ns.ClientURL())
	const agent, number = 311, "13800005678"
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
	results, err := newAdmin(js).Tail(ctx, events.StreamResults, events.SubjectResults+".>", true)
	if err != nil {
		t.Fatal(err)
	}
	defer results.Stop()
	cmd := events.DisconnectCommand{CommandID: "late-nats-1", AgentID: agent, Number: number}
	if err := newAdmin(js).Publish(ctx, cmd, ""); err != nil {
		t.Fatal(err)
	}
	var res events.Result
	if err := admin.Await(ctx, results, cmd.CommandID, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != events.StatusAccepted {
		t.Fatalf("result %+v, want accepted", res)
	}
}

// A long-running role gives up after --connect-timeout and exits non-zero
// with a JSON error line; an error found before the logger exists is a
// JSON line too under --log-format json.
func TestStartErrorsAreJSONLines(t *testing.T) {
	bin := buildBinary(t)
	unreachable := fmt.Sprintf("nats://127.0.0.1:%d", testPort(t))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"connect timeout", []string{"worker", "--nats-url", unreachable, "--gateway-url", "https://127.0.0.1:1", "--connect-timeout", "1s"}, "connect to NATS"},
		{"poller connect timeout", []string{"poller", "--nats-url", unreachable, "--gateway-url", "https://127.0.0.1:1", "--connect-timeout", "1s"}, "connect to NATS"},
		{"bad setting", []string{"worker", "--log-format", "json"}, "--gateway-url (CALLCONTROL_GATEWAY_URL)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var errOut bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Stderr = &errOut
			start := time.Now()
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("did not exit within 20 s:\n%s", errOut.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\n%s", err, errOut.String())
			}
			if c.name == "connect timeout" && time.Since(start) < time.Second {
				t.Fatalf("gave up after %v, before --connect-timeout", time.Since(start))
			}
			var last string
			sc := bufio.NewScanner(&errOut)
			for sc.Scan() {
				last = sc.Text()
			}
			var line struct {
				Level, Error, Message string
			}
			if err := json.Unmarshal([]byte(last), &line); err != nil || line.Level != "error" || !strings.Contains(line.Error, c.want) {
				t.Fatalf("last stderr line %q: want a JSON error line whose error names %q (%v)", last, c.want, err)
			}
			if c.name == "connect timeout" && !strings.Contains(line.Error, "--connect-timeout") {
				t.Fatalf("the error does not name --connect-timeout: %s", line.Error)
			}
		})
	}
}
