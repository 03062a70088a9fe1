package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// preferWait returns the wait=N preference of the request's Prefer
// headers (RFC 7240), in seconds, and whether there is one. A malformed
// value is no preference (RFC 7240 §2: ignore what is not understood).
func preferWait(h http.Header) (int, bool) {
	for _, v := range h.Values("Prefer") {
		for pref := range strings.SplitSeq(v, ",") {
			tok, _, _ := strings.Cut(pref, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(tok), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err == nil && n >= 0 {
				return n, true
			}
		}
	}
	return 0, false
}

// appliedWait is the wait honoured: n seconds, at most max.
func appliedWait(n int, limit time.Duration) int {
	return min(n, int(limit/time.Second))
}

// idempotencyKey returns the Idempotency-Key header
// (draft-ietf-httpapi-idempotency-key-header: a structured-field string,
// "..."; a bare value is accepted too), "" when absent, and whether it is
// well formed: a command_id (1-64 letters, digits, '-' or '_').
func idempotencyKey(h http.Header) (string, bool) {
	vals := h.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", true
	}
	if len(vals) > 1 {
		return "", false
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	return k, k != "" && validID(k)
}
