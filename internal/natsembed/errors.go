package natsembed

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrLocked is what a [*LockedError] matches with errors.Is.
var ErrLocked = errors.New("natsembed: data directory in use")

// ErrNotReady is wrapped by the [*ServerError] of a server that did not
// accept connections within Config.ReadyTimeout.
var ErrNotReady = errors.New("natsembed: server not ready")

// LockedError: another process holds the data directory's lock.
type LockedError struct {
	Dir string // the data directory
	PID int    // the holder's PID as written in the lock file, 0 if unknown
}

// Holder names the holder: "pid 123", or "unknown pid".
func (e *LockedError) Holder() string {
	if e.PID == 0 {
		return "unknown pid"
	}
	return "pid " + strconv.Itoa(e.PID)
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("natsembed: data directory %s is in use by another process (%s)", e.Dir, e.Holder())
}

// Is reports whether target is [ErrLocked].
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// The operations of a [DataDirError].
const (
	OpCreate = "create" // creating the data directory
	OpLock   = "lock"   // opening, locking or writing the lock file
	OpList   = "list"   // reading the directory to empty it (Fresh)
	OpFresh  = "fresh"  // removing an entry (Fresh)
)

// DataDirError: the data directory could not be prepared.
type DataDirError struct {
	Op   string // OpCreate, OpLock, OpList or OpFresh
	Path string // the directory, or the lock file for OpLock
	Err  error
}

func (e *DataDirError) Error() string {
	return fmt.Sprintf("natsembed: data directory: %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *DataDirError) Unwrap() error { return e.Err }

// ListenError: Config.Listen is not host:port.
type ListenError struct {
	Listen string
	Port   bool // the port is not a number (else host:port did not parse)
	Err    error
}

func (e *ListenError) Error() string {
	if e.Port {
		return fmt.Sprintf("natsembed: listen %q: port: %v", e.Listen, e.Err)
	}
	return fmt.Sprintf("natsembed: listen %q: %v", e.Listen, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// ServerError: the server could not be created or did not become ready.
type ServerError struct {
	Listen string
	Err    error // nats-server's error, or one wrapping ErrNotReady
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("natsembed: server on %s: %v", e.Listen, e.Err)
}

func (e *ServerError) Unwrap() error { return e.Err }
