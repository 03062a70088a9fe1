package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A nil *Metrics is a component without metrics: every method is a no-op.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.CommandDone("accepted", "0")
	m.Accepted(time.Now(), time.Now())
	m.Confirmed(true, time.Now(), time.Now())
	m.SetPending(1)
	m.SetAgentsOwned(1)
	m.GatewayRequest(OpPoll, time.Second, nil)
	m.GUIDRotated()
	m.AckWaitMargin(time.Second)
	m.CallChecked(CheckState, time.Now(), time.Now(), time.Now())
	if d := m.GatewayUnanswered(time.Now()); d != 0 {
		t.Fatalf("GatewayUnanswered of nil = %v", d)
	}
}

// One Metrics per registry: a second New on the same registry fails.
func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("second New on one registry succeeded")
	}
}

// Retcode label values are bounded: only "", "0" and NNN-NNN, at most
// maxRetcodes distinct ones; the rest are "other".
func TestRetcodeLabel(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""}, {"0", "0"}, {"200-023", "200-023"}, {"000-003", "000-003"},
		{"200-23", "other"}, {"2000-023", "other"}, {"abc-def", "other"}, {"5550101", "other"},
		{"101.AgentGateway1", "other"},
	}
	s := newLabelSet(maxRetcodes)
	for _, c := range cases {
		if got := s.label(c.in); got != c.want {
			t.Errorf("label(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for i := range 100 {
		s.label(fmt.Sprintf("900-%03d", i))
	}
	if got := s.label("901-001"); got != "other" {
		t.Fatalf("past the bound: label = %q, want other", got)
	}
	if got := s.label("200-023"); got != "200-023" {
		t.Fatalf("a retcode seen before the bound: label = %q", got)
	}
}

// GatewayRequest counts by op and class, counts session errors and failed
// polls, and tracks whether the gateway answers.
func TestGatewayRequest(t *testing.T) {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	session := &gateway.Error{Op: "poll", StatusCode: 200, RetCode: "100-006"}
	noAnswer := &gateway.Error{Op: "disconnect", Err: context.DeadlineExceeded}
	invalid := &gateway.Error{Op: "disconnect", Err: gateway.ErrInvalidInput}

	m.GatewayRequest(OpDisconnect, 10*time.Millisecond, nil)
	m.GatewayRequest(OpPoll, time.Second, session)
	if got := testutil.ToFloat64(m.gwRequests[OpDisconnect][0]); got != 1 {
		t.Fatalf("disconnect success = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.sessionErrors[OpPoll]); got != 1 {
		t.Fatalf("poll session errors = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.pollErrors[classIndex(gateway.ClassSession)]); got != 1 {
		t.Fatalf("poll errors{class=session} = %v, want 1", got)
	}
	if d := m.GatewayUnanswered(time.Now()); d != 0 {
		t.Fatalf("after answers: unanswered for %v, want 0", d)
	}

	m.GatewayRequest(OpDisconnect, time.Second, invalid) // never sent
	if d := m.GatewayUnanswered(time.Now()); d != 0 {
		t.Fatalf("after invalid input: unanswered for %v, want 0", d)
	}
	m.GatewayRequest(OpDisconnect, time.Second, noAnswer)
	m.GatewayRequest(OpDisconnect, time.Second, noAnswer)
	if d := m.GatewayUnanswered(time.Now().Add(time.Minute)); d < time.Minute {
		t.Fatalf("a minute into failures: unanswered for %v", d)
	}
	m.GatewayRequest(OpDisconnect, time.Second, &gateway.Error{Op: "disconnect", StatusCode: 503})
	if d := m.GatewayUnanswered(time.Now().Add(time.Minute)); d != 0 {
		t.Fatalf("after an HTTP 503 answer: unanswered for %v, want 0", d)
	}
}

// Names lists what New and RegisterDeadLetters register, histograms by
// family name, and nothing else.
func TestNames(t *testing.T) {
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"callcontrol_commands_total", "callcontrol_dead_letter_messages",
		"callcontrol_call_check_window_seconds", "callcontrol_gateway_last_answer_timestamp_seconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s: %v", want, names)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, Namespace+"_") || strings.HasSuffix(n, "_bucket") {
			t.Errorf("Names() holds %s", n)
		}
	}
}
