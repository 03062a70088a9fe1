// Package natsembed runs the nats-server with JetStream that a callcontrol
// process embeds (callcontrol dev, the bench, the soak test): a file store
// in a data directory locked by one process at a time, optionally emptied
// first, and a client listener.
//
// Two JetStream servers on one store corrupt or wedge it, so [Start] takes
// an exclusive lock on the data directory before the server opens it, and
// [Server.Shutdown] releases it after the server has stopped. The package
// does no logging (the server runs with NoLog).
package natsembed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// The defaults of [Config].
const (
	DefaultServerName   = "callcontrol"
	DefaultMaxStore     = 1 << 30 // bytes of JetStream file store
	DefaultMaxMemory    = 64 << 20
	DefaultReadyTimeout = 10 * time.Second
)

// Config of an embedded server. The zero value of each field but Listen
// and DataDir takes its default.
type Config struct {
	// Listen is the client listener, host:port; port 0 picks a free one
	// (see [Server.ClientURL]). Required.
	Listen string
	// DataDir holds the JetStream store and the lock file; it is created
	// (mode 0700) if need be. Required.
	DataDir string
	// Fresh empties DataDir (all but the lock file) before the server
	// starts: the store starts from nothing. Default false: an earlier
	// run's store is used.
	Fresh bool
	// ServerName: default [DefaultServerName].
	ServerName string
	// MaxStore and MaxMemory are JetStream's limits, in bytes: defaults
	// [DefaultMaxStore] and [DefaultMaxMemory].
	MaxStore, MaxMemory int64
	// ReadyTimeout is how long Start waits for the server to accept
	// connections: default [DefaultReadyTimeout].
	ReadyTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.ServerName == "" {
		c.ServerName = DefaultServerName
	}
	if c.MaxStore == 0 {
		c.MaxStore = DefaultMaxStore
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = DefaultMaxMemory
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	return c
}

// Server is a running embedded nats-server.
type Server struct {
	ns   *server.Server
	lock *dirLock
}

// Start locks cfg.DataDir, empties it if cfg.Fresh, and starts the server,
// returning once it accepts connections. Errors: a [*ListenError] for a
// bad cfg.Listen, a [*LockedError] (errors.Is [ErrLocked]) when another
// process holds the data directory, a [*DataDirError] when it cannot be
// prepared, a [*ServerError] when the server does not start (wrapping
// [ErrNotReady] when it does not accept connections in time, e.g. because
// the port is in use). On error nothing is left running or locked.
func Start(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ns, err := start(cfg, lock)
	if err != nil {
		lock.release()
		return nil, err
	}
	return &Server{ns: ns, lock: lock}, nil
}

// start empties the locked directory if cfg.Fresh and starts the server.
func start(cfg Config, lock *dirLock) (*server.Server, error) {
	if cfg.Fresh {
		if err := lock.empty(); err != nil {
			return nil, err
		}
	}
	host, port, err := splitListen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	return startServer(cfg, host, port)
}

// splitListen parses listen into a host and nats-server's port (-1 for a
// free one).
func splitListen(listen string) (string, int, error) {
	host, portS, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, &ListenError{Listen: listen, Err: err}
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return "", 0, &ListenError{Listen: listen, Port: true, Err: err}
	}
	if port == 0 {
		port = -1 // nats-server's "random port"
	}
	return host, port, nil
}

func startServer(cfg Config, host string, port int) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: cfg.ServerName, Host: host, Port: port, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: cfg.DataDir, JetStreamMaxStore: cfg.MaxStore, JetStreamMaxMemory: cfg.MaxMemory,
	})
	if err != nil {
		return nil, &ServerError{Listen: cfg.Listen, Err: err}
	}
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, &ServerError{Listen: cfg.Listen, Err: fmt.Errorf("%w within %v", ErrNotReady, cfg.ReadyTimeout)}
	}
	return ns, nil
}

// ClientURL is the server's client URL, nats://host:port, with the port
// it listens on.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server, waits for it to be down, and releases the
// data directory. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.lock.release()
}
