package natsembed

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// LockFileName is the lock file inside a data directory. It holds the PID
// of the process holding the lock.
const LockFileName = "callcontrol.lock"

// dirLock is an exclusive lock on a data directory, held by this process
// until release (or its end: the kernel drops a flock with the process).
type dirLock struct {
	dir  string
	f    *os.File
	once sync.Once
}

// lockDir creates dir if need be and takes an exclusive, non-blocking
// flock on dir/callcontrol.lock, writing this process's PID into it.
func lockDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &DataDirError{Op: OpCreate, Path: dir, Err: err}
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &DataDirError{Op: OpLock, Path: path, Err: err}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Dir: dir, PID: holderPID(path)}
		}
		return nil, &DataDirError{Op: OpLock, Path: path, Err: err}
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, &DataDirError{Op: OpLock, Path: path, Err: err}
	}
	return &dirLock{dir: dir, f: f}, nil
}

// holderPID reads the PID in the lock file at path, 0 if unreadable.
func holderPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// empty removes everything in the directory but the lock file: the
// JetStream store starts from nothing. Only the lock holder may call it.
func (l *dirLock) empty() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return &DataDirError{Op: OpList, Path: l.dir, Err: err}
	}
	for _, e := range entries {
		if e.Name() == LockFileName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.dir, e.Name())); err != nil {
			return &DataDirError{Op: OpFresh, Path: l.dir, Err: err}
		}
	}
	return nil
}

// release unlocks the directory, once. The lock file stays (removing it
// would let a third process lock a new file while a second one holds the
// old).
func (l *dirLock) release() {
	l.once.Do(func() {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		_ = l.f.Close()
	})
}
