package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
)

// A second process on the data directory of a running `callcontrol dev`
// exits non-zero at once, naming the directory and the holder's PID, and
// the first one goes on serving.
func TestDevDataDirIsLocked(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var out1, err1 testenv.SyncBuffer
	first := exec.Command(bin, "dev", "--nats-listen", "127.0.0.1:0", "--data-dir", dir, "--agents", "1")
	first.Stdout, first.Stderr = &out1, &err1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	testenv.WaitFor(t, 60*time.Second, "the first dev to be ready", func() bool { return strings.Contains(out1.String(), "callcontrol dev ready") })
	if !strings.Contains(out1.String(), "data dir "+dir) {
		t.Fatalf("dev's banner does not name its data directory %s:\n%s", dir, out1.String())
	}

	var out2, err2 bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "dev", "--nats-listen", "127.0.0.1:0", "--data-dir", dir, "--agents", "1")
	second.Stdout, second.Stderr = &out2, &err2
	err := second.Run()
	if ctx.Err() != nil {
		t.Fatalf("the second dev on %s did not exit within 15 s:\nstdout: %s\nstderr: %s", dir, out2.String(), err2.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second dev: %v, want a non-zero exit", err)
	}
	msg := err2.String()
	if !strings.Contains(msg, dir) || !strings.Contains(msg, "pid "+strconv.Itoa(first.Process.Pid)) {
		t.Fatalf("second dev's error does not name %s and pid %d:\n%s", dir, first.Process.Pid, msg)
	}
	if first.ProcessState != nil {
		t.Fatalf("the first dev ended: %s", err1.String())
	}
}

// dev says which data directory it uses and how many commands an old one
// holds; --fresh starts from an empty one.
func TestDevReusedDataDirIsSaid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	var logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	stored := regexp.MustCompile(`data dir ` + regexp.QuoteMeta(dir) + `: (\d+) stored commands`)
	// devOnce runs dev until its banner is out, runs with it, stops it and
	// returns the count of stored commands its banner reported.
	devOnce := func(with func(natsURL string), extra ...string) int {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		var out testenv.SyncBuffer
		done := make(chan error, 1)
		args := append([]string{"dev", "--nats-listen", "127.0.0.1:0", "--data-dir", dir, "--agents", "1", "--log-format", "json"}, extra...)
		go func() { done <- run(ctx, args, &out) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("dev: %v", err)
			}
		}()
		started := strings.Count(logs.String(), `"worker started"`)
		polling := strings.Count(logs.String(), `"poller started"`)
		testenv.WaitFor(t, 30*time.Second, "dev's banner", func() bool { return strings.Contains(out.String(), "callcontrol dev ready") })
		// Stopped before its worker and poller are up, dev reports the
		// cancel of their provisioning as an error.
		testenv.WaitFor(t, 10*time.Second, "the worker to start", func() bool { return strings.Count(logs.String(), `"worker started"`) > started })
		testenv.WaitFor(t, 10*time.Second, "the poller to start", func() bool { return strings.Count(logs.String(), `"poller started"`) > polling })
		m := stored.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("dev's banner does not say what %s holds:\n%s", dir, out.String())
		}
		if with != nil {
			with(regexp.MustCompile(`NATS (nats://[0-9.:]+)`).FindStringSubmatch(out.String())[1])
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if n := devOnce(func(url string) {
		if err := run(context.Background(), []string{"disconnect", "--nats-url", url, "--agent", "101", "--number", "5550101"}, &bytes.Buffer{}); err != nil {
			t.Fatalf("disconnect: %v", err)
		}
	}); n != 0 {
		t.Fatalf("a new data dir reported %d stored commands", n)
	}
	if n := devOnce(nil); n != 1 {
		t.Fatalf("the reused data dir reported %d stored commands, want 1", n)
	}
	if !regexp.MustCompile(`"data_dir":"` + regexp.QuoteMeta(dir) + `","stored_commands":1`).MatchString(logs.String()) {
		t.Fatalf("no log line about the reused data dir:\n%s", logs.String())
	}
	if n := devOnce(nil, "--fresh"); n != 0 {
		t.Fatalf("dev --fresh reported %d stored commands, want 0", n)
	}
}
