package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
)

// readmeCommand returns the arguments of the README's example command line
// that starts with prefix, so the test runs exactly what users are told.
func readmeCommand(t *testing.T, prefix string) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, prefix) {
			return strings.Fields(strings.TrimPrefix(line, prefix))
		}
	}
	t.Fatalf("README.md has no line starting with %q", prefix)
	return nil
}

// readmeBlock returns the README's shell block whose first line starts
// with prefix (after indentation), its lines unindented.
func readmeBlock(t *testing.T, prefix string) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), prefix) {
			continue
		}
		var block []string
		for _, b := range lines[i:] {
			if strings.TrimSpace(b) == "```" {
				return strings.Join(block, "\n")
			}
			block = append(block, strings.TrimSpace(b))
		}
	}
	t.Fatalf("README.md has no shell block starting with %q", prefix)
	return ""
}

// startDev runs `callcontrol dev` with args (on a random NATS port and an
// empty data dir of its own) until the test ends, and returns its NATS URL
// as its banner names it, its standard output and its logs.
func startDev(t *testing.T, args ...string) (string, *testenv.SyncBuffer, *testenv.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(args, "--nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir()), &out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	ready := regexp.MustCompile(`NATS (nats://[0-9.:]+)`)
	var url string
	testenv.WaitFor(t, 30*time.Second, "dev to report ready", func() bool {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return url, &out, &logs
}

// The README's run command (callcontrol dev) starts the embedded system, and
// the README's disconnect --wait example prints an accepted result.
func TestDevAndReadmeDisconnect(t *testing.T) {
	ctx := context.Background()
	url, _, logs := startDev(t, "dev", "--log-format", "json")
	args := append([]string{"disconnect"}, readmeCommand(t, "go run ./cmd/callcontrol disconnect")...)
	args = append(args, "--nats-url", url, "--timeout", "20s")
	var res bytes.Buffer
	if err := run(ctx, args, &res); err != nil {
		t.Fatalf("disconnect: %v; output: %s", err, res.String())
	}
	if !regexp.MustCompile(`(?m)^accepted\s+command=`).MatchString(res.String()) {
		t.Fatalf("want an accepted result, got: %s", res.String())
	}
	if !regexp.MustCompile(`(?m)^confirmed\s+command=.* event=AgentEvent_Customer_Release`).MatchString(res.String()) {
		t.Fatalf("want a confirmation, got: %s", res.String())
	}
	// The same command_id again (the same command published twice): the
	// stream drops the copy, no second result is published, and --wait
	// still prints the command's one result and confirmation.
	for range 2 {
		again := []string{"disconnect", "--agent", "102", "--number", "5550102", "--command-id", "again-1",
			"--wait", "--nats-url", url, "--timeout", "20s"}
		var out bytes.Buffer
		if err := run(ctx, again, &out); err != nil {
			t.Fatalf("disconnect again-1: %v; output: %s", err, out.String())
		}
		if !regexp.MustCompile(`(?m)^accepted\s+command=again-1`).MatchString(out.String()) ||
			!regexp.MustCompile(`(?m)^confirmed\s+command=again-1`).MatchString(out.String()) {
			t.Fatalf("want again-1 accepted and confirmed, got: %s", out.String())
		}
	}
	// The README's call-scoped example, run as written by bash from the
	// repository's root (NATS reached through the variable every flag has).
	block := readmeBlock(t, "call=$(go run ./cmd/callcontrol agents")
	sh := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", block)
	sh.Dir = "../.."
	sh.Env = append(os.Environ(), "CALLCONTROL_NATS_URL="+url)
	scoped, err := sh.CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^accepted\s+command=.* agent=103 `).Match(scoped) ||
		!regexp.MustCompile(`(?m)^confirmed\s+command=.* agent=103 `).Match(scoped) {
		t.Fatalf("README call-scoped example: %v\n%s", err, scoped)
	}
	// The logs of the whole run: every GUID ends in ".AgentGateway<N>", and
	// the demo numbers are 5550<agent>.
	testenv.WaitFor(t, 5*time.Second, "the worker's log line", func() bool { return strings.Contains(logs.String(), `"outcome":"accepted"`) })
	if l := logs.String(); strings.Contains(l, "AgentGateway") || regexp.MustCompile(`5550\d{3}`).MatchString(l) {
		t.Fatalf("dev logs hold a GUID or an unmasked number:\n%s", l)
	}
}

// A bad setting is refused at start with an error naming the flag and its
// environment variable.
func TestSettingsErrorsNameTheSetting(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"worker", "--concurrency", "0", "--gateway-url", "https://gw:8043"}, nil, "--concurrency (CALLCONTROL_CONCURRENCY)"},
		{[]string{"worker"}, nil, "--gateway-url (CALLCONTROL_GATEWAY_URL)"},
		{[]string{"worker", "--gateway-url", "ftp://x"}, nil, "--gateway-url (CALLCONTROL_GATEWAY_URL)"},
		{[]string{"worker", "--gateway-url", "https://gw:8043"}, map[string]string{"CALLCONTROL_ACK_WAIT": "soon"}, "CALLCONTROL_ACK_WAIT"},
		{[]string{"worker", "--gateway-url", "https://gw:8043", "--log-level", "loud"}, nil, "--log-level"},
		{[]string{"worker", "--gateway-url", "https://gw:8043", "--gc-percent", "0"}, nil, "--gc-percent (CALLCONTROL_GC_PERCENT)"},
		{[]string{"worker", "--gateway-url", "https://gw:8043", "--max-clock-skew", "2m"}, nil, "--max-clock-skew (CALLCONTROL_MAX_CLOCK_SKEW)"},
		{[]string{"worker", "--gateway-url", "https://gw:8043"}, map[string]string{"CALLCONTROL_MAX_CLOCK_SKEW": "0s"}, "--max-clock-skew (CALLCONTROL_MAX_CLOCK_SKEW)"},
		{[]string{"dev", "--max-clock-skew", "-1s"}, nil, "--max-clock-skew (CALLCONTROL_MAX_CLOCK_SKEW)"},
		{[]string{"disconnect", "--agent", "42", "--number", "123"}, nil, "--agent (CALLCONTROL_AGENT)"},
		{[]string{"disconnect", "--agent", "101", "--number", "12/../34"}, nil, "--number (CALLCONTROL_NUMBER)"},
		{[]string{"disconnect", "--agent", "101", "--number", "5550101", "--traceparent", "00-xyz-01"}, nil, "--traceparent (CALLCONTROL_TRACEPARENT)"},
		{[]string{"worker", "--gateway-url", "https://gw:8043", "--otel-exporter", "zipkin"}, nil, "--otel-exporter (CALLCONTROL_OTEL_EXPORTER)"},
		{[]string{"gatewaysim", "--sim-authmode", "3"}, nil, "--sim-authmode"},
		{[]string{"nope"}, nil, `unknown command "nope"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), c.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to name %s", err, c.want)
			}
			var exit exitError
			if errors.As(err, &exit) {
				t.Fatalf("got an exit code instead of a configuration error")
			}
		})
	}
}
