package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestDisconnect_Request(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("/voicecall/101/disconnect/5550100", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		testHeader(t, r, "Guid", testGUID)
		testHeader(t, r, "guid", testGUID)
		testHeader(t, r, "Content-Type", "application/json; charset=UTF-8")
		testHeader(t, r, "Accept", "application/json")
		if r.URL.RawQuery != "" {
			t.Errorf("query %q, want none", r.URL.RawQuery)
		}
		if body, _ := io.ReadAll(r.Body); len(body) != 0 || r.ContentLength > 0 {
			t.Errorf("body %q (length %d), want none", body, r.ContentLength)
		}
		respond(w, http.StatusOK, ok)
	})
	if err := b.client.Disconnect(context.Background(), testAgent, testNumber, testGUID); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	wantClass(t, nil, ClassSuccess)
	if n := b.hits.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestDisconnect_BaseURLPrefix(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
		respond(w, http.StatusOK, ok)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/nslb/")
	if err := c.Disconnect(context.Background(), 59999, "1", testGUID); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if got, want := <-paths, "/nslb/agentgateway/resource/voicecall/59999/disconnect/1"; got != want {
		t.Fatalf("path %q, want %q", got, want)
	}
}

// TestDisconnect_InvalidInput checks that bad input is refused before any
// request is built, with a permanent *Error naming the operation.
func TestDisconnect_InvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { respond(w, http.StatusOK, ok) })
	tests := []struct {
		name   string
		agent  int
		number string
		guid   string
		field  string
	}{
		{"agent 0", 0, testNumber, testGUID, "agent id"},
		{"agent 100", 100, testNumber, testGUID, "agent id"},
		{"agent 60000", 60000, testNumber, testGUID, "agent id"},
		{"agent negative", -101, testNumber, testGUID, "agent id"},
		{"empty number", testAgent, "", testGUID, "number"},
		{"path traversal", testAgent, "12/../34", testGUID, "number"},
		{"escaped slash", testAgent, "12%2F34", testGUID, "number"},
		{"query", testAgent, "123?x=1", testGUID, "number"},
		{"plus", testAgent, "+8613800000000", testGUID, "number"},
		{"space", testAgent, "555 0100", testGUID, "number"},
		{"letters", testAgent, "12a", testGUID, "number"},
		{"arabic-indic digits", testAgent, "١٢٣", testGUID, "number"},
		{"25 digits", testAgent, strings.Repeat("1", 25), testGUID, "number"},
		{"guid CRLF", testAgent, testNumber, testGUID + "\r\nX-Injected: 1", "guid"},
		{"guid LF", testAgent, testNumber, testGUID + "\nX", "guid"},
		{"guid NUL", testAgent, testNumber, testGUID + "\x00", "guid"},
		{"guid space", testAgent, testNumber, "a b", "guid"},
		{"guid tab", testAgent, testNumber, "a\tb", "guid"},
		{"guid DEL", testAgent, testNumber, "a\x7fb", "guid"},
		{"guid non-ASCII", testAgent, testNumber, "gü", "guid"},
		{"guid empty", testAgent, testNumber, "", "guid"},
		{"guid too long", testAgent, testNumber, strings.Repeat("g", 257), "guid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.client.Disconnect(context.Background(), tt.agent, tt.number, tt.guid)
			e := asError(t, err)
			if e.Op != "disconnect" || e.StatusCode != 0 || e.RetCode != "" {
				t.Errorf("error %+v, want Op disconnect and no status or retcode", e)
			}
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("error %v does not wrap ErrInvalidInput", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
			wantClass(t, err, ClassPermanent)
		})
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the server, want 0", n)
	}
}

// TestClassify_HTTP runs every status × retcode case through a real
// server and checks the class, status and retcode of the error.
func TestClassify_HTTP(t *testing.T) {
	t.Parallel()
	type tc struct {
		name    string
		status  int
		body    string
		want    Class
		wantRC  string
		headers []string
	}
	tests := []tc{
		{"success", 200, ok, ClassSuccess, "", nil},
		{"numeric retcode 0", 200, `{"message":"","retcode":0}`, ClassSuccess, "", nil},
		{"numeric retcode 1", 200, `{"message":"x","retcode":1}`, ClassPermanent, "1", nil},
		{"null message", 200, `{"message":null,"retcode":"0"}`, ClassSuccess, "", nil},
		{"unknown retcode", 200, retcode("999-001", "WAS URL"), ClassPermanent, "999-001", nil},
		{"100-002", 200, retcode("100-002", "already signed in"), ClassPermanent, "100-002", nil},
		{"HTML page on 200", 200, "<html><body>Service Unavailable</body></html>", ClassTransient, "", []string{"Content-Type", "text/html"}},
		{"invalid JSON", 200, `{"retcode":"0",`, ClassTransient, "", nil},
		{"JSON array", 200, `[]`, ClassTransient, "", nil},
		{"JSON null", 200, `null`, ClassTransient, "", nil},
		{"empty body", 200, ``, ClassTransient, "", nil},
		{"missing retcode", 200, `{"message":"success","result":{}}`, ClassTransient, "", nil},
		{"retcode object", 200, `{"retcode":{"a":1}}`, ClassTransient, "", nil},
		{"HTTP 500", 500, "<html>Internal Server Error</html>", ClassTransient, "", nil},
		{"HTTP 502", 502, "<html>Bad Gateway</html>", ClassTransient, "", nil},
		{"HTTP 503", 503, "", ClassTransient, "", nil},
		{"HTTP 504", 504, "", ClassTransient, "", nil},
		{"HTTP 429", 429, "", ClassTransient, "", nil},
		{"HTTP 408", 408, "", ClassTransient, "", nil},
		{"HTTP 401", 401, "", ClassSession, "", nil},
		{"HTTP 403", 403, "", ClassSession, "", nil},
		{"HTTP 400", 400, "", ClassPermanent, "", nil},
		{"HTTP 404", 404, "<html>Not Found</html>", ClassPermanent, "", nil},
		{"HTTP 405", 405, "", ClassPermanent, "", nil},
		{"HTTP 302", 302, "", ClassPermanent, "", []string{"Location", "https://elsewhere.invalid/"}},
		{"HTTP 204", 204, "", ClassPermanent, "", nil},
		{"HTTP 503 with session retcode", 503, retcode("100-006", "not signed in"), ClassSession, "100-006", nil},
		{"HTTP 500 with already-done retcode", 500, retcode("200-023", "no call"), ClassAlreadyDone, "200-023", nil},
		{"HTTP 404 with retcode 0", 404, ok, ClassPermanent, "0", nil},
		{"HTTP 503 with retcode 0", 503, ok, ClassTransient, "0", nil},
	}
	for rc, want := range retCodeClass {
		tests = append(tests, tc{"retcode " + rc, 200, retcode(rc, "m"), want, rc, nil})
	}
	for _, rc := range []string{"200-204", "000-002", "000-001", "100-001", "100-004", "100-010", "200-001", "200-025"} {
		tests = append(tests, tc{"retcode " + rc, 200, retcode(rc, "m"), ClassPermanent, rc, nil})
	}
	b := setup(t)
	b.mux.HandleFunc("POST /voicecall/101/disconnect/{number}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("number"))
		tt := tests[i]
		respond(w, tt.status, tt.body, tt.headers...)
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := b.client.Disconnect(context.Background(), testAgent, strconv.Itoa(i), testGUID)
			wantClass(t, err, tt.want)
			if RetCodeOf(err) != tt.wantRC {
				t.Errorf("RetCodeOf = %q, want %q", RetCodeOf(err), tt.wantRC)
			}
			if err == nil {
				return
			}
			e := asError(t, err)
			if e.Op != "disconnect" || e.StatusCode != tt.status {
				t.Errorf("Op %q status %d, want disconnect %d", e.Op, e.StatusCode, tt.status)
			}
			if tt.status == 200 && tt.wantRC == "" && !errors.Is(err, ErrMalformedResponse) {
				t.Errorf("error %v does not wrap ErrMalformedResponse", err)
			}
		})
	}
}

func TestDisconnect_RetCodeError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /voicecall/101/disconnect/5550100", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, retcode("200-024", "The number does not exist in the call"))
	})
	err := b.client.Disconnect(context.Background(), testAgent, testNumber, testGUID)
	e := asError(t, err)
	if e.RetCode != "200-024" || e.Message != "The number does not exist in the call" || e.StatusCode != 200 {
		t.Fatalf("error %+v", e)
	}
	if want := "gateway: disconnect: retcode 200-024: The number does not exist in the call"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err, want)
	}
	wantClass(t, err, ClassAlreadyDone)
}
