package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/callcontrol/callcontrol/internal/jsondup"
)

// FuzzDecodeResponse feeds arbitrary gateway answers (HTTP status,
// Content-Type, Set-GUID, Retry-After and body) through the client's
// response decoding, as [Client.do] and [Client.PollEvent] run it, and
// checks its properties:
//
//   - it never panics, and success is exactly HTTP 200 with retcode "0";
//   - a 200 answer fails with a readable retcode or wraps
//     [ErrMalformedResponse] (never an error that explains nothing);
//   - every failure is an *Error of the operation, and [Classify] returns
//     one of the six classes, never an unnamed one;
//   - the retcode and message it keeps are bounded (32 and 200 bytes),
//     valid UTF-8 without control, separator or format characters (so
//     they are safe in a log line or a header), and no error text contains
//     the GUID or the number, whatever the gateway echoes;
//   - a Set-GUID it accepts is a header value that cannot inject a header;
//   - a decoded event survives a round trip through its JSON encoding;
//   - a call-data result (see [parseCallResult]) is a call with a bounded
//     ID and parties without the agent and without duplicates, no call,
//     or an error wrapping [ErrMalformedResponse].
//
// The seed corpus in testdata/fuzz/FuzzDecodeResponse holds the answers of
// cc-gateway.md: success, each documented error retcode, one poll reply per
// event type, and malformed ones (HTML 502, truncated, wrong types).
func FuzzDecodeResponse(f *testing.F) {
	f.Add(200, "application/json;charset=UTF-8", "", "", []byte(ok))
	f.Add(200, "application/json", "JSESSIONID=9b1c.AgentGateway1", "",
		[]byte(`{"message":"","retcode":"0","event":{"eventType":"AgentEvent_Customer_Release","workNo":"101","content":{"callid":"1456403549-15","number":"88880001"},"eventGenTime":1700000000000}}`))
	f.Add(502, "text/html", "", "5", []byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
	f.Add(200, "application/json", "", "", []byte(`{"message":"success","retcode":"0","result":{"callfeature":0,"callid":"1700000000-1","caller":"5550100","called":"101","begintime":1700000000000,"endtime":0}}`))
	f.Add(200, "application/json", "", "", []byte(`{"retcode":"0","result":[{"callId":"1-1","CALLER":5550100,"called":101},{"callid":"1-2","caller":"101","called":"101"}]}`))
	f.Add(200, "application/json", "", "", []byte(`{"retcode":"0","result":{"caller":"5550100","endtime":"x"}}`))
	f.Add(200, "application/json", "", "", []byte(`{"message":"","retcode":"100-006","RetCode":"0"}`))
	f.Add(200, "application/json", "", "",
		[]byte(`{"message":"","retcode":"0","event":{"eventType":"AgentEvent_Customer_Release","workNo":"101","content":{"callid":"1-1","number":"88880001","Number":"88880002"}}}`))
	f.Fuzz(func(t *testing.T, status int, contentType, setGUID, retryAfterValue string, body []byte) {
		status = 100 + abs(status)%900
		h := http.Header{}
		h.Set("Content-Type", contentType)
		h.Set("Set-GUID", setGUID)
		h.Set("Retry-After", retryAfterValue)
		resp := &http.Response{StatusCode: status, Header: h}
		secrets := []string{testGUID, testNumber}
		env, err := checkResponse("poll", resp, body, secrets)
		checkDecoded(t, status, body, env, err)
		if g, ok := parseSetGUID(h); ok && !isHeaderToken(g) {
			t.Fatalf("Set-GUID %q accepted", g)
		}
		if err == nil && jsondup.Check(body, envelopeKeys) != nil {
			t.Fatalf("success for %q, whose envelope repeats a key", body)
		}
		if err == nil && env.Event != nil {
			checkEventRoundTrip(t, env.Event)
		}
		if err == nil {
			checkCallResult(t, env.Result)
		}
	})
}

// checkDecoded checks the outcome of checkResponse for one answer.
func checkDecoded(t *testing.T, status int, body []byte, env envelope, err error) {
	t.Helper()
	if c := Classify(err); strings.HasPrefix(c.String(), "Class(") {
		t.Fatalf("Classify(%v) = %s", err, c)
	}
	if err == nil {
		if status != http.StatusOK || strings.TrimSpace(string(env.RetCode)) != "0" {
			t.Fatalf("success for status %d retcode %q", status, env.RetCode)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Op != "poll" || e.StatusCode != status {
		t.Fatalf("error %#v, want *Error of poll with status %d", err, status)
	}
	if Classify(err) == ClassSuccess {
		t.Fatalf("error %v classified success", err)
	}
	if status == http.StatusOK && e.RetCode == "" && !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("200 without retcode: %v does not wrap ErrMalformedResponse", err)
	}
	checkSafeText(t, "retcode", e.RetCode, maxRetCode)
	checkSafeText(t, "message", e.Message, maxMessage)
	msg := err.Error()
	for _, s := range []string{testGUID, testNumber} {
		if strings.Contains(msg, s) {
			t.Fatalf("error text %q of body %q contains the secret %q", msg, body, s)
		}
	}
}

// checkCallResult parses a call-data result as agent 101's.
func checkCallResult(t *testing.T, raw json.RawMessage) {
	t.Helper()
	ci, found, err := parseCallResult(raw, "101", "")
	switch {
	case err != nil && !errors.Is(err, ErrMalformedResponse):
		t.Fatalf("result %s: error %v does not wrap ErrMalformedResponse", raw, err)
	case err != nil || !found:
		if ci.CallID != "" || ci.Parties != nil {
			t.Fatalf("result %s: no call, yet %+v", raw, ci)
		}
	case ci.CallID == "" || len(ci.CallID) > maxCallIDLen:
		t.Fatalf("result %s: call id %q", raw, ci.CallID)
	case slices.Contains(ci.Parties, "101") || len(slices.Compact(slices.Sorted(slices.Values(ci.Parties)))) != len(ci.Parties):
		t.Fatalf("result %s: parties %q hold the agent or a duplicate", raw, ci.Parties)
	}
}

// checkSafeText fails when s is longer than limit bytes, not valid UTF-8,
// or holds a control, line or paragraph separator or format character.
func checkSafeText(t *testing.T, what, s string, limit int) {
	t.Helper()
	unsafe := func(r rune) bool { return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) }
	if len(s) > limit || !utf8.ValidString(s) || strings.IndexFunc(s, unsafe) >= 0 {
		t.Fatalf("%s %q: not at most %d bytes of valid UTF-8 without control or invisible characters", what, s, limit)
	}
}

// checkEventRoundTrip encodes ev and decodes it again.
func checkEventRoundTrip(t *testing.T, ev *Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("event %+v cannot be encoded: %v", ev, err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("event %s cannot be decoded again: %v", b, err)
	}
	if back.Type != ev.Type || back.WorkNo != ev.WorkNo || back.GenTime != ev.GenTime ||
		!sameJSON(back.Content, ev.Content) {
		t.Fatalf("round trip of %+v through %s gave %+v", ev, b, back)
	}
}

// sameJSON compares two JSON values by their compact form; absent and
// null are the same.
func sameJSON(a, b json.RawMessage) bool {
	compact := func(r json.RawMessage) string {
		if len(bytes.TrimSpace(r)) == 0 {
			return "null"
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, r); err != nil {
			return "invalid:" + string(r)
		}
		return buf.String()
	}
	return compact(a) == compact(b)
}

// isHeaderToken reports whether s is 1..256 bytes of printable ASCII
// without spaces or ';': one header value that cannot start another.
func isHeaderToken(s string) bool {
	if len(s) == 0 || len(s) > maxGUIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ';' {
			return false
		}
	}
	return true
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
