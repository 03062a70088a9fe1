package api

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/time/rate"
)

// guard authenticates the request for scope ("" public, anyScope any
// token), applies the token's rate limit and calls h.
func (s *Server) guard(scope Scope, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scope == "" {
			h(w, r, nil)
			return
		}
		tok := s.authenticate(r)
		if tok == nil {
			// The same answer whatever the path: no hint of what exists.
			w.Header().Set("WWW-Authenticate", `Bearer realm="callcontrol"`)
			writeProblem(w, problem(http.StatusUnauthorized, CodeUnauthorized, "a valid bearer token is required"))
			return
		}
		infoOf(r).token = tok.Name
		if wait, ok := s.limit(tok.Name); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			writeProblem(w, problem(http.StatusTooManyRequests, CodeRateLimited, "this token's rate limit is exceeded; retry after "+strconv.Itoa(wait)+" s"))
			return
		}
		if scope != anyScope && !tok.has(scope) {
			writeProblem(w, problem(http.StatusForbidden, CodeForbidden, "the token lacks the scope "+string(scope)))
			return
		}
		h(w, r, tok)
	})
}

// authenticate returns the entry of the request's bearer token, or nil.
func (s *Server) authenticate(r *http.Request) *TokenEntry {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil
	}
	return s.cfg.Tokens.lookup(tok)
}

// limit takes one request from name's limiter; when none is left it
// returns false and the seconds to wait (at least 1).
func (s *Server) limit(name string) (int, bool) {
	s.mu.Lock()
	l, ok := s.limiters[name]
	if !ok {
		l = rate.NewLimiter(s.cfg.Rate, s.cfg.Burst)
		s.limiters[name] = l
	}
	s.mu.Unlock()
	now := s.cfg.Now()
	res := l.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay == 0 {
		return 0, true
	}
	res.CancelAt(now)
	if !res.OK() || delay == rate.InfDuration {
		return 60, false
	}
	return max(1, int(math.Ceil(delay.Seconds()))), false
}
