package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem details object, the body of every error
// response (Content-Type application/problem+json).
type Problem struct {
	// Type is "urn:callcontrol:problem:<code>", one per kind of problem.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field and Rule name the field of a rejected command and the rule it
	// breaks (validation problems only).
	Field string `json:"field,omitempty"`
	Rule  string `json:"rule,omitempty"`
	// Reason is the stable code of a refused replay (admin.Refused*).
	Reason string `json:"reason,omitempty"`
}

// Problem codes, the last part of [Problem.Type].
const (
	CodeValidation      = "validation"
	CodeBadHeader       = "bad_header"
	CodeUnsupportedType = "unsupported_media_type"
	CodeTooLarge        = "payload_too_large"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeMethod          = "method_not_allowed"
	CodeRateLimited     = "rate_limited"
	CodeKeyReused       = "idempotency_key_reused"
	CodeKeyInFlight     = "idempotency_key_in_flight"
	CodeReplayRefused   = "replay_refused"
	CodeUnavailable     = "unavailable"
)

func problem(status int, code, detail string) *Problem {
	return &Problem{Type: "urn:callcontrol:problem:" + code, Title: http.StatusText(status), Status: status, Detail: detail}
}

// writeProblem writes p as the response.
func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, problem(http.StatusInternalServerError, CodeUnavailable, "the response could not be encoded"))
		return
	}
	writeRaw(w, status, append(b, '\n'))
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
