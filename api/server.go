package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Server serves the HTTP API. It is safe for concurrent use.
type Server struct {
	cfg   Config
	admin *admin.Client
	idem  *idempotency
	mux   *http.ServeMux
	log   zerolog.Logger

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New returns a server with cfg (see [Config.Validate] for its errors).
// It does no I/O.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ac, err := admin.New(cfg.JetStream, admin.WithClock(cfg.Now))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, admin: ac, idem: &idempotency{js: cfg.JetStream, now: cfg.Now},
		mux: http.NewServeMux(), log: cfg.Logger, limiters: map[string]*rate.Limiter{}}
	s.routes()
	return s, nil
}

// handler is a route's handler, called with the caller's token entry
// (nil on the public routes).
type handler func(w http.ResponseWriter, r *http.Request, tok *TokenEntry)

type route struct {
	method, path string
	scope        Scope // "": public
	h            handler
}

// table is every route the server serves (the document must list each).
func (s *Server) table() []route {
	return []route{
		{http.MethodPost, "/v1/disconnects", ScopeCommandsWrite, s.postDisconnect},
		{http.MethodGet, "/v1/commands/{id}", ScopeCommandsRead, s.getCommand},
		{http.MethodGet, "/v1/agents", ScopeEventsRead, s.getAgents},
		{http.MethodGet, "/v1/agents/{id}", ScopeEventsRead, s.getAgent},
		{http.MethodGet, "/v1/deadletters", ScopeCommandsRead, s.getDeadLetters},
		{http.MethodGet, "/v1/deadletters/{seq}", ScopeCommandsRead, s.getDeadLetter},
		{http.MethodPost, "/v1/deadletters/{seq}/replay", ScopeDLQWrite, s.postReplay},
		{http.MethodGet, "/v1/events", anyScope, s.getEvents},
		{http.MethodGet, "/v1/openapi.json", "", s.getOpenAPI},
	}
}

func (s *Server) routes() {
	allow := map[string][]string{}
	for _, rt := range s.table() {
		s.mux.Handle(rt.method+" "+rt.path, s.guard(rt.scope, rt.h))
		allow[rt.path] = append(allow[rt.path], rt.method)
	}
	for path, methods := range allow {
		s.mux.Handle(path, s.guard("", methodNotAllowed(methods)))
	}
	s.mux.Handle("/", s.guard(anyScope, func(w http.ResponseWriter, r *http.Request, _ *TokenEntry) {
		writeProblem(w, problem(http.StatusNotFound, CodeNotFound, "no such resource"))
	}))
}

// anyScope guards a route any valid token may reach.
const anyScope Scope = "*"

func methodNotAllowed(methods []string) handler {
	list := strings.Join(methods, ", ")
	if strings.Contains(list, http.MethodGet) {
		list += ", " + http.MethodHead
	}
	return func(w http.ResponseWriter, r *http.Request, _ *TokenEntry) {
		w.Header().Set("Allow", list)
		writeProblem(w, problem(http.StatusMethodNotAllowed, CodeMethod, r.Method+" is not allowed here; allowed: "+list))
	}
}

// ServeHTTP serves one request and logs it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	info := &requestInfo{}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(rec, r)
	route := r.Pattern
	if route == "" || route == "/" {
		route = "unmatched"
	}
	ev := s.log.Info()
	if rec.status >= 500 {
		ev = s.log.Error()
	}
	ev.Str("method", r.Method).Str("route", route).Int("status", rec.status).
		Dur("duration", s.cfg.Now().Sub(start)).Str("token", info.token)
	if info.err != nil {
		ev = ev.Str("error", info.err.Error())
	}
	ev.Msg("http request")
}

// requestInfo is what a handler tells the request log.
type requestInfo struct {
	token string // the token's name
	err   error  // the internal error of a 5xx
}

type requestInfoKey struct{}

func infoOf(r *http.Request) *requestInfo {
	if i, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return i
	}
	return &requestInfo{}
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// internalError answers 503 for a failure of JetStream (or another
// dependency) and hands err to the request log; the client gets no
// detail.
func internalError(w http.ResponseWriter, r *http.Request, err error) {
	infoOf(r).err = err
	w.Header().Set("Retry-After", "1")
	writeProblem(w, problem(http.StatusServiceUnavailable, CodeUnavailable, "callcontrol could not reach its streams; try again"))
}

// since is the time d before now, on the server's clock.
func (s *Server) since(d time.Duration) time.Time { return s.cfg.Now().Add(-d) }
