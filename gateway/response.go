package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callcontrol/callcontrol/internal/jsondup"
)

// The most bytes of the gateway's message and retcode kept in an [Error].
const (
	maxMessage = 200
	maxRetCode = 32
)

// envelope is the JSON body of every gateway answer:
// {"message":"...","retcode":"0","result":...,"event":{...}}.
type envelope struct {
	RetCode text            `json:"retcode"`
	Message text            `json:"message"`
	Event   *Event          `json:"event"`
	Result  json.RawMessage `json:"result"` // read by the call-data queries only
}

// text is a JSON string that also accepts a number (kept as its literal,
// e.g. 0 becomes "0") and null (""): gateway versions disagree on types.
type text string

// UnmarshalJSON implements [json.Unmarshaler].
func (t *text) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		*t = text(s)
		return err
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a JSON string or number")
	}
	*t = text(n)
	return nil
}

// readBody reads at most limit bytes of r. A longer body is an error
// wrapping [ErrMalformedResponse]; it is not read further.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrMalformedResponse, limit)
	}
	return b, nil
}

// checkResponse turns a read response into its envelope, or into an
// *Error. Success is HTTP 200 with retcode "0" only. A non-200 answer keeps
// its status and, when the body parses, its retcode and message; a 200
// answer whose body does not parse or lacks a retcode wraps
// [ErrMalformedResponse]. secrets are cut out of the message.
//
// The retcode is compared without surrounding white space. One that is
// empty, or holds anything clean would change (control characters, more
// than 32 bytes, a secret), is no retcode: the answer is malformed, and
// the error carries no retcode, so it is not classified by a garbled one.
func checkResponse(op string, resp *http.Response, data []byte, secrets []string) (envelope, error) {
	e := &Error{Op: op, StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header, time.Now())}
	env, derr := decode(data)
	rc := strings.TrimSpace(string(env.RetCode))
	if derr == nil {
		e.RetCode = clean(rc, secrets, maxRetCode)
		e.Message = clean(string(env.Message), secrets, maxMessage)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return env, e
	case derr != nil:
		e.Err = fmt.Errorf("%w: %v", ErrMalformedResponse, derr)
		return env, e
	case rc == "":
		e.Err = fmt.Errorf("%w: no retcode", ErrMalformedResponse)
		return env, e
	case e.RetCode != rc:
		e.RetCode = ""
		e.Err = fmt.Errorf("%w: unreadable retcode", ErrMalformedResponse)
		return env, e
	case rc != "0":
		return env, e
	}
	return env, nil
}

// decode parses a gateway body, which must be a JSON object. Its errors
// describe the syntax, never the content.
func decode(data []byte) (envelope, error) {
	var env envelope
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return env, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return envelope{}, err
	}
	// encoding/json keeps the last of repeated keys, in any casing: with
	// {"retcode":"100-006","RetCode":"0"} the answer has no single
	// meaning. The event is checked by Event.UnmarshalJSON; other values
	// (result) are not read.
	if err := jsondup.Check(data, envelopeKeys); err != nil {
		return envelope{}, repeated(err)
	}
	return env, nil
}

// envelopeKeys checks the envelope's own keys only.
var envelopeKeys = jsondup.Options{Fold: true, Skip: func(string) bool { return true }}

// repeated describes a repeated-key error without quoting the key, which
// is the gateway's text (errors name the syntax, never the content).
func repeated(err error) error {
	var e *jsondup.Error
	if errors.As(err, &e) {
		return fmt.Errorf("a key repeats within one object (depth %d)", e.Depth)
	}
	return err
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date,
// relative to now. Absent, invalid or past values give 0.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 32); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// clean makes a text of the gateway safe to log and to put in a header:
// each secret (the GUID; a number of three or more digits) is replaced by
// "***"; control characters, Unicode line and paragraph separators and
// invisible format characters (bidi overrides, zero-width ones) by spaces;
// invalid UTF-8 by U+FFFD. The result is cut to limit bytes on a UTF-8
// boundary.
// sessionCookie matches a JSESSIONID cookie or field (the form the
// gateway's session IDs, GUIDs included, take) in any casing, and its value.
var sessionCookie = regexp.MustCompile(`(?i)(jsessionid"?\s*[=:]\s*"?)[^\s";,&\\]+`)

// RedactSessionCookies replaces the value of every JSESSIONID in b (a
// cookie, a header copy, a JSON field, in any casing) by "[redacted]": a
// session secret even when it is not a GUID the caller knows. Only
// characters of the value are replaced, so JSON stays JSON.
func RedactSessionCookies(b []byte) []byte {
	return sessionCookie.ReplaceAll(b, []byte("${1}[redacted]"))
}

func clean(msg string, secrets []string, limit int) string {
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	// A session cookie (JSESSIONID=..., any casing) is a session secret
	// even when it is not the GUID the request sent.
	msg = string(RedactSessionCookies([]byte(msg)))
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "\uFFFD"))
	if len(msg) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return strings.TrimSpace(msg)
}
