package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzRequest checks that no agent ID, number or GUID can change the
// request a disconnect sends beyond its two intended places: the number as
// the last path segment and the GUID as the one Guid header value. Either
// the input is refused with [ErrInvalidInput] (permanent, before anything
// is built, without repeating the value), or the request, written to the
// wire and parsed back, has exactly the expected path, no query or
// fragment, and exactly the expected headers. CR/LF, NUL, '/', '..', '?',
// '#', '%', spaces and non-ASCII look-alike digits are the interesting
// inputs; the seed corpus holds them.
func FuzzRequest(f *testing.F) {
	f.Add(101, "13800001234", "3f2a9c1e-7b1d-4c55-9e0a-2a6d1b9f0c11.AgentGateway0")
	f.Add(101, "12/../34", "g\r\nX-Injected: 1")
	f.Add(59999, "１２３", "g?x#y")
	c, err := New(Config{BaseURL: "https://nslb.example:8043/prefix"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, agent int, number, guid string) {
		err := firstErr(checkAgentID("disconnect", agent), checkNumber("disconnect", number), checkGUID("disconnect", guid))
		if err != nil {
			checkRefused(t, err, agent, number, guid)
			return
		}
		path := agentPath("voicecall", agent) + "/disconnect/" + number
		req, err := c.newRequest(t.Context(), call{op: "disconnect", method: http.MethodPost, path: path, guid: guid})
		if err != nil {
			t.Fatalf("valid input (%d, %q, %q) refused: %v", agent, number, guid, err)
		}
		got := wireRoundTrip(t, req)
		want := "/prefix/agentgateway/resource/voicecall/" + strconv.Itoa(agent) + "/disconnect/" + number
		if got.URL.Path != want || got.URL.RawPath != "" || got.URL.RawQuery != "" || got.URL.Fragment != "" || got.Method != http.MethodPost {
			t.Fatalf("%s %s (query %q), want POST %s", got.Method, got.URL.Path, got.URL.RawQuery, want)
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range got.Header {
				if !yield(k) {
					return
				}
			}
		})
		// req.Write adds Content-Length: 0 for a POST without a body.
		if want := []string{"Accept", "Content-Length", "Content-Type", "Guid", "User-Agent"}; !slices.Equal(names, want) ||
			got.ContentLength != 0 {
			t.Fatalf("headers %q (length %d), want %q and no body", names, got.ContentLength, want)
		}
		if v := got.Header.Values("Guid"); len(v) != 1 || v[0] != guid {
			t.Fatalf("Guid header %q, want [%q]", v, guid)
		}
	})
}

// checkRefused checks the error of input refused before sending.
func checkRefused(t *testing.T, err error, agent int, number, guid string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidInput) || Classify(err) != ClassPermanent {
		t.Fatalf("refusal %v: not a permanent ErrInvalidInput", err)
	}
	msg := err.Error()
	if len(guid) >= 8 && strings.Contains(msg, guid) {
		t.Fatalf("refusal %q repeats the GUID", msg)
	}
	if checkAgentID("disconnect", agent) == nil && len(number) >= 6 && strings.Contains(msg, number) {
		t.Fatalf("refusal %q repeats the number", msg)
	}
}

// wireRoundTrip writes req as HTTP/1.1 and parses it back, as a server
// would see it.
func wireRoundTrip(t *testing.T, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	wire := buf.String()
	r := bufio.NewReader(&buf)
	got, err := http.ReadRequest(r)
	if err != nil {
		t.Fatalf("the request written as %q does not parse: %v", wire, err)
	}
	if _, err := r.Peek(1); err == nil {
		t.Fatalf("more than one request in %q", wire)
	}
	return got
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
