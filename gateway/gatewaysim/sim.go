package gatewaysim

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by the programmatic setup methods of [Sim].
var (
	ErrClosed       = errors.New("gatewaysim: simulator closed")
	ErrUnknownAgent = errors.New("gatewaysim: unknown agent")
	ErrNotSignedIn  = errors.New("gatewaysim: agent not signed in")
	ErrNoCall       = errors.New("gatewaysim: agent has no active call")
	ErrNoHeldCall   = errors.New("gatewaysim: agent has no held call")
	ErrBusy         = errors.New("gatewaysim: agent already has an active call")
	ErrNotParty     = errors.New("gatewaysim: number is not a party of the agent's calls")
	ErrBadNumber    = errors.New("gatewaysim: number must be 1 to 24 digits")
	ErrNoCustomer   = errors.New("gatewaysim: agent has no released customer to redial")
)

// Sim is a simulated CC-Gateway. Create it with [New], serve it with any
// HTTP server (it is an [http.Handler]) and stop it with [Sim.Close].
type Sim struct {
	cfg Config
	mux *http.ServeMux

	// mu guards every field below it and all agent and call state.
	mu       sync.Mutex
	agents   map[int]*agent
	inflight map[int]int // non-poll requests in progress per agent ID
	timers   map[*time.Timer]struct{}
	records  []Disconnect
	closed   bool

	generations map[string]int // calls started per customer number
	redialAfter time.Duration  // Config.RedialAfter, changed by SetRedialAfter

	faults faultPlan
	seq    atomic.Int64 // call ID sequence

	executed        atomic.Int64
	overlaps        atomic.Int64
	concurrentPolls atomic.Int64
	signedOut       atomic.Int64
	polls           atomic.Int64
	redials         atomic.Int64
	onRedial        atomic.Int64
	queries         atomic.Int64

	done        chan struct{}
	closeOnce   sync.Once
	janitorDone chan struct{}
}

// New returns a simulator with cfg's defaults applied. When
// cfg.NoPollSignOut > 0 it starts a background sweep; call [Sim.Close] to
// stop it.
func New(cfg Config) *Sim {
	s := &Sim{
		cfg:      cfg.withDefaults(),
		agents:   make(map[int]*agent),
		inflight: make(map[int]int),
		timers:   make(map[*time.Timer]struct{}),
		done:     make(chan struct{}),

		generations: make(map[string]int),
	}
	s.redialAfter = s.cfg.RedialAfter
	s.faults.set(Faults{})
	s.routes()
	if s.cfg.NoPollSignOut > 0 {
		s.janitorDone = make(chan struct{})
		go s.janitor()
	}
	return s
}

// AuthMode is the AUTHMODE the simulator runs: 2 (rotating GUID) when
// its Config said 2, else 1 (static GUID).
func (s *Sim) AuthMode() int { return s.cfg.AuthMode }

// ServeHTTP serves the gateway API under /agentgateway/resource and the
// admin API under /simulator.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Close releases held long polls and held fault requests, stops redial
// timers and the no-poll sweep. It is idempotent. The handler keeps
// answering afterwards, but polls are no longer held.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closed = true
		for t := range s.timers {
			t.Stop()
		}
		clear(s.timers)
		s.mu.Unlock()
		if s.janitorDone != nil {
			<-s.janitorDone
		}
	})
}

func (s *Sim) now() time.Time { return s.cfg.Now() }

// janitor signs out agents that were not polled for NoPollSignOut.
func (s *Sim) janitor() {
	defer close(s.janitorDone)
	every := min(max(s.cfg.NoPollSignOut/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.sweepIdle()
		}
	}
}

func (s *Sim) sweepIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, a := range s.agents {
		s.expireIdleLocked(a, now)
	}
}

// enter starts a non-poll request for agent id. It reports false when
// another one is in progress: that counts as an overlap.
func (s *Sim) enter(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[id] > 0 {
		s.overlaps.Add(1)
		return false
	}
	s.inflight[id]++
	return true
}

func (s *Sim) leave(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[id]--; s.inflight[id] <= 0 {
		delete(s.inflight, id)
	}
}

// guarded runs fn inside agent id's in-flight window, after Latency. A
// request that overlaps another one for the same agent gets 000-007. The
// window closes before the reply is written, so a client that sends its
// next request right after reading a reply never sees a false overlap.
func (s *Sim) guarded(id int, fn func() reply) reply {
	if !s.enter(id) {
		return reply{retcode: rcRepeated}
	}
	defer s.leave(id)
	if d := s.cfg.Latency; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
		}
	}
	return fn()
}
