package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrInvalidInput is wrapped by the [Error] of a request refused before
	// it was sent: agent ID out of range, number not 1..24 ASCII digits,
	// GUID that is empty or holds spaces or control characters. Permanent.
	ErrInvalidInput = errors.New("invalid input")

	// ErrMalformedResponse is wrapped by the [Error] of an answer that could
	// not be understood: a body larger than MaxBodyBytes, an HTTP 200 body
	// that is not a JSON object (an HTML error page) or has no retcode, a
	// sign-in without Set-GUID. Transient: proxies and overloaded gateways
	// produce these, and the next attempt usually succeeds.
	ErrMalformedResponse = errors.New("malformed response")
)

// Error is the error of every [Client] method. Its text never contains the
// GUID, the request URL or the phone number, so it is safe to log; the
// gateway's message is cleaned of them too.
type Error struct {
	Op         string        // "disconnect", "signin", "logout", "poll", "callinfo" or "callinfobycallid"
	StatusCode int           // HTTP status; 0 when no response arrived
	RetCode    string        // the body's retcode when it parsed, else ""
	Message    string        // the body's message, at most 200 bytes
	RetryAfter time.Duration // from a Retry-After header (seconds or HTTP date); 0 if none
	Err        error         // the cause (transport, decoding, invalid input); may be nil
}

// Error returns e.g. "gateway: disconnect: retcode 200-024: <message>",
// "gateway: disconnect: HTTP 503" or "gateway: disconnect: <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gateway: ")
	b.WriteString(e.Op)
	if e.StatusCode != 0 && e.StatusCode != http.StatusOK {
		b.WriteString(": HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.RetCode != "" {
		b.WriteString(": retcode ")
		b.WriteString(e.RetCode)
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause, so [errors.Is] sees e.g.
// [context.DeadlineExceeded], [ErrInvalidInput] or [ErrMalformedResponse].
func (e *Error) Unwrap() error { return e.Err }

// Class is what a caller should do about an error; see [Classify].
type Class int

// The classes returned by [Classify].
const (
	ClassSuccess     Class = iota // nil error
	ClassAlreadyDone              // the party or call is already gone: 200-023, 200-024
	ClassTransient                // retry with backoff (honour [RetryAfterOf])
	ClassLimited                  // transient, but retry only a few times: 100-007
	ClassSession                  // the GUID is invalid: refresh it or sign in again
	ClassPermanent                // do not retry
)

// String returns "success", "already_done", "transient", "limited",
// "session" or "permanent" (a stable value for logs and metrics).
func (c Class) String() string {
	switch c {
	case ClassSuccess:
		return "success"
	case ClassAlreadyDone:
		return "already_done"
	case ClassTransient:
		return "transient"
	case ClassLimited:
		return "limited"
	case ClassSession:
		return "session"
	case ClassPermanent:
		return "permanent"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Classify tells the caller what to do about err, an error of a [Client]
// method (possibly wrapped). The retcode of the body decides when there is
// one other than "0"; otherwise the HTTP status; otherwise the cause.
//
//	error                                          class
//	---------------------------------------------  ------------
//	nil                                            success
//	retcode 200-023, 200-024                       already_done
//	retcode 000-004, 000-007, 100-003, 100-021,    transient
//	        105-002, 105-003
//	retcode 100-007                                limited
//	retcode 000-003, 100-006, 100-008, 105-001,    session
//	        105-004, 105-005, 105-006, 105-007
//	retcode 200-204, 000-002, any other            permanent
//	HTTP 5xx, 429, 408                             transient
//	HTTP 401, 403                                  session
//	other HTTP status (3xx, other 4xx, 1xx, 2xx)   permanent
//	no response (dial, reset, TLS, timeout, EOF,   transient
//	  context canceled or deadline exceeded,
//	  headers over 64 KiB or never finished,
//	  body truncated or trickled past the timeout)
//	HTTP 200 malformed (HTML page, invalid JSON,   transient
//	  empty body, no retcode, body larger than
//	  MaxBodyBytes, no Set-GUID)
//	invalid input (agent ID, number, GUID)         permanent
//	not an *Error                                  transient
//
// The Content-Type of an answer is not checked: proxies and Tomcat label
// the gateway's JSON application/json, text/plain or text/html alike, so
// the body alone decides. Every answer is bounded: by RequestTimeout (or
// PollTimeout) from dialing to the last body byte, by MaxBodyBytes
// (after transparent gzip decoding) and by 64 KiB of response headers.
//
// Unknown errors are transient, so the caller's retry budget, not this
// function, ends them. A canceled ctx is transient as well: the caller
// checks its own ctx to tell shutdown apart. A timeout is ambiguous for a
// disconnect (the gateway may have executed it); a retry that then gets
// 200-023/200-024 is [ClassAlreadyDone].
func Classify(err error) Class {
	if err == nil {
		return ClassSuccess
	}
	var e *Error
	if !errors.As(err, &e) {
		return ClassTransient
	}
	switch {
	case errors.Is(e.Err, ErrInvalidInput):
		return ClassPermanent
	case e.RetCode != "" && e.RetCode != "0":
		return classOfRetCode(e.RetCode)
	case e.StatusCode == 0 || e.StatusCode == http.StatusOK:
		return ClassTransient
	}
	return classOfStatus(e.StatusCode)
}

// retCodeClass lists the retcodes that are not permanent.
var retCodeClass = map[string]Class{
	"200-023": ClassAlreadyDone, // no call exists when releasing the number
	"200-024": ClassAlreadyDone, // the number is not in the call
	"000-004": ClassTransient,   // agent being switched over (DR / node switch)
	"000-007": ClassTransient,   // interface invoked repeatedly
	"100-003": ClassTransient,   // resource unavailable during sign-in
	"100-021": ClassTransient,   // sign-in in progress
	"105-002": ClassTransient,   // DR recovery in progress
	"105-003": ClassTransient,   // DR recovery completed
	"100-007": ClassLimited,     // exception while running the operation
	"000-003": ClassSession,     // GUID missing, invalid or expired
	"100-006": ClassSession,     // agent not signed in
	"100-008": ClassSession,     // agent already signed out
	"105-001": ClassSession,     // agent not cached in Redis
	"105-004": ClassSession,     // failed to queue for DR recovery
	"105-005": ClassSession,     // DR recovery wait timed out
	"105-006": ClassSession,     // DR recovery GUID mismatch
	"105-007": ClassSession,     // DR switch off
}

// classOfRetCode classifies a retcode other than "0".
func classOfRetCode(rc string) Class {
	if c, ok := retCodeClass[rc]; ok {
		return c
	}
	return ClassPermanent
}

// classOfStatus classifies an HTTP status other than 200.
func classOfStatus(status int) Class {
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return ClassTransient
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return ClassSession
	}
	return ClassPermanent
}

// RetCodeOf returns the gateway retcode carried by err, or "" when err is
// not (or does not wrap) an [*Error] whose body parsed. "" therefore means
// the gateway's answer is unknown.
func RetCodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.RetCode
	}
	return ""
}

// RetryAfterOf returns the Retry-After delay carried by err, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
