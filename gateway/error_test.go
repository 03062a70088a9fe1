package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClassify_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassSuccess},
		{"plain error", errors.New("boom"), ClassTransient},
		{"context canceled", context.Canceled, ClassTransient},
		{"deadline exceeded", context.DeadlineExceeded, ClassTransient},
		{"transport", &Error{Op: "disconnect", Err: io.ErrUnexpectedEOF}, ClassTransient},
		{"invalid input", invalid("disconnect", "number"), ClassPermanent},
		{"wrapped retcode", fmt.Errorf("attempt 3: %w", &Error{Op: "disconnect", StatusCode: 200, RetCode: "200-023"}), ClassAlreadyDone},
		{"joined", errors.Join(errors.New("x"), &Error{Op: "poll", StatusCode: 200, RetCode: "100-006"}), ClassSession},
		{"status only", &Error{Op: "logout", StatusCode: 418}, ClassPermanent},
		{"malformed 200", &Error{Op: "poll", StatusCode: 200, Err: ErrMalformedResponse}, ClassTransient},
		{"limited", &Error{Op: "disconnect", StatusCode: 200, RetCode: "100-007"}, ClassLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Fatalf("Classify = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClass_String(t *testing.T) {
	t.Parallel()
	want := map[Class]string{
		ClassSuccess: "success", ClassAlreadyDone: "already_done", ClassTransient: "transient",
		ClassLimited: "limited", ClassSession: "session", ClassPermanent: "permanent", Class(42): "Class(42)",
	}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), s)
		}
	}
}

func TestError_Error(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "disconnect", StatusCode: 200, RetCode: "200-024", Message: "gone"}, "gateway: disconnect: retcode 200-024: gone"},
		{&Error{Op: "disconnect", StatusCode: 200, RetCode: "100-007"}, "gateway: disconnect: retcode 100-007"},
		{&Error{Op: "disconnect", StatusCode: 503}, "gateway: disconnect: HTTP 503"},
		{&Error{Op: "poll", StatusCode: 503, RetCode: "000-004", Message: "switching"}, "gateway: poll: HTTP 503: retcode 000-004: switching"},
		{&Error{Op: "disconnect", Err: io.EOF}, "gateway: disconnect: EOF"},
		{&Error{Op: "signin", StatusCode: 200, Err: ErrMalformedResponse}, "gateway: signin: malformed response"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestRetCodeOfRetryAfterOf(t *testing.T) {
	t.Parallel()
	e := fmt.Errorf("wrapped: %w", &Error{Op: "disconnect", StatusCode: 503, RetCode: "000-004", RetryAfter: 3 * time.Second})
	if RetCodeOf(e) != "000-004" || RetryAfterOf(e) != 3*time.Second {
		t.Fatalf("RetCodeOf %q RetryAfterOf %v", RetCodeOf(e), RetryAfterOf(e))
	}
	for _, err := range []error{nil, errors.New("x"), &Error{Op: "poll", Err: io.EOF}} {
		if RetCodeOf(err) != "" || RetryAfterOf(err) != 0 {
			t.Errorf("%v: RetCodeOf %q RetryAfterOf %v, want zero", err, RetCodeOf(err), RetryAfterOf(err))
		}
	}
}

func TestRetryAfter_Parse(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second},
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute}, // RFC 850
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

// TestRetryAfter_HTTP checks that Retry-After reaches the error, both as
// seconds and as an HTTP date.
func TestRetryAfter_HTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	b.mux.HandleFunc("POST /voicecall/101/disconnect/1", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusServiceUnavailable, "<html>busy</html>", "Retry-After", "7", "Content-Type", "text/html")
	})
	b.mux.HandleFunc("POST /voicecall/101/disconnect/2", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusTooManyRequests, "", "Retry-After", date)
	})
	err := b.client.Disconnect(context.Background(), testAgent, "1", testGUID)
	wantClass(t, err, ClassTransient)
	if got := RetryAfterOf(err); got != 7*time.Second {
		t.Errorf("seconds: RetryAfterOf = %v, want 7s", got)
	}
	err = b.client.Disconnect(context.Background(), testAgent, "2", testGUID)
	wantClass(t, err, ClassTransient)
	if got := RetryAfterOf(err); got <= 58*time.Minute || got > time.Hour {
		t.Errorf("date: RetryAfterOf = %v, want about 1h", got)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		msg, want string
		secrets   []string
	}{
		{"plain", "plain", nil},
		{"number 5550100 of guid abc-1", "number *** of guid ***", []string{"abc-1", "5550100"}},
		{"agent 101 has no call 1", "agent 101 has no call 1", []string{"1", ""}},
		{"line1\r\nline2\x00", "line1  line2", nil},
		{long, strings.Repeat("é", 100), nil},
		{"session JSESSIONID=0f0e-1.AgentGateway1; Path=/", "session JSESSIONID=[redacted]; Path=/", nil},
		{`{"jsessionId": "abc.AgentGateway0"}`, `{"jsessionId": "[redacted]"}`, nil},
	}
	for _, tt := range tests {
		if got := clean(tt.msg, tt.secrets, maxMessage); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
