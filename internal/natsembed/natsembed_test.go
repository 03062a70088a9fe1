package natsembed_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/nats-io/nats.go"
)

func start(t *testing.T, cfg natsembed.Config) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// The server takes connections on its ClientURL, with JetStream on, and
// Shutdown is idempotent.
func TestStartServes(t *testing.T) {
	s := start(t, natsembed.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", s.ClientURL())
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("$JS.API.INFO", nil, nats.DefaultTimeout); err != nil {
		t.Fatalf("JetStream: %v", err)
	}
	s.Shutdown()
	s.Shutdown()
}

// A second server on a data directory in use fails with a LockedError
// naming the directory and the holder's PID; after the first one's
// Shutdown the directory can be used again.
func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := natsembed.Start(natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = natsembed.Start(natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir})
	var locked *natsembed.LockedError
	if !errors.As(err, &locked) || !errors.Is(err, natsembed.ErrLocked) {
		t.Fatalf("second Start = %v, want a *LockedError", err)
	}
	if locked.Dir != dir || locked.Holder() != "pid "+strconv.Itoa(os.Getpid()) {
		t.Fatalf("LockedError names %s, %s; want %s, pid %d", locked.Dir, locked.Holder(), dir, os.Getpid())
	}
	first.Shutdown()
	start(t, natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir})
}

// Fresh empties the data directory, all but the lock file.
func TestFresh(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "jetstream", "old")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	start(t, natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir, Fresh: true})
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Fresh, %s: %v", old, err)
	}
	if _, err := os.Stat(filepath.Join(dir, natsembed.LockFileName)); err != nil {
		t.Fatal(err)
	}
}

// A bad listen address is a ListenError, and leaves the directory unlocked.
func TestBadListen(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		listen string
		port   bool
	}{{"127.0.0.1", false}, {"127.0.0.1:x", true}} {
		_, err := natsembed.Start(natsembed.Config{Listen: c.listen, DataDir: dir})
		var le *natsembed.ListenError
		if !errors.As(err, &le) || le.Port != c.port {
			t.Fatalf("Start(%q) = %v, want a *ListenError (Port %v)", c.listen, err, c.port)
		}
	}
	start(t, natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir})
}

// A server that cannot listen (the port is taken) is a ServerError
// wrapping ErrNotReady, and leaves the directory unlocked.
func TestPortInUse(t *testing.T) {
	first := start(t, natsembed.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	dir := t.TempDir()
	listen := strings.TrimPrefix(first.ClientURL(), "nats://")
	_, err := natsembed.Start(natsembed.Config{Listen: listen, DataDir: dir, ReadyTimeout: 500 * time.Millisecond})
	var se *natsembed.ServerError
	if !errors.As(err, &se) || !errors.Is(err, natsembed.ErrNotReady) {
		t.Fatalf("Start on a taken port = %v, want a *ServerError wrapping ErrNotReady", err)
	}
	start(t, natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir})
}
