package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the lock file inside a data directory.
const lockFileName = "callcontrol.lock"

// dirLock is an exclusive lock on a data directory, held by this process
// until release (or its end: the kernel drops a flock with the process).
type dirLock struct {
	dir string
	f   *os.File
}

// lockDataDir creates dir if need be and takes an exclusive, non-blocking
// flock on dir/callcontrol.lock, writing this process's PID into it. When
// another process holds the lock the error names the directory and the
// holder's PID. Two embedded JetStream servers on one store corrupt or
// wedge it, so a process with an embedded store takes this lock first.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", flagRef("data-dir"), err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: lock %s: %w", flagRef("data-dir"), path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "unknown pid"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "pid " + strconv.Itoa(pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: data directory %s is in use by another callcontrol process (%s); stop it or use another directory",
				flagRef("data-dir"), dir, holder)
		}
		return nil, fmt.Errorf("%s: lock %s: %w", flagRef("data-dir"), path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: lock %s: %w", flagRef("data-dir"), path, err)
	}
	return &dirLock{dir: dir, f: f}, nil
}

// empty removes everything in the directory but the lock file: the
// JetStream store starts from nothing. Only the lock holder may call it.
func (l *dirLock) empty() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("%s: %w", flagRef("data-dir"), err)
	}
	for _, e := range entries {
		if e.Name() == lockFileName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.dir, e.Name())); err != nil {
			return fmt.Errorf("%s: --fresh: %w", flagRef("data-dir"), err)
		}
	}
	return nil
}

// release unlocks the directory. The lock file stays (removing it would
// let a third process lock a new file while a second one holds the old).
func (l *dirLock) release() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
