package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
)

// `disconnect --wait --traceparent` prints the trace ID; the simulator
// receives a request in that trace, and the worker's and the poller's
// stdout exporter (--otel-exporter stdout, here from the environment)
// writes the disconnect, gateway request and confirm spans of that trace.
func TestDisconnectTraceparentFollowed(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	t.Setenv("CALLCONTROL_OTEL_EXPORTER", "stdout")
	rs := startRoles(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, append([]string{"signin", "--agent", "101", "--nats-url", rs.natsURL}, rs.gwFlags...), &out); err != nil {
		t.Fatalf("signin: %v", err)
	}
	if _, err := rs.sim.StartCall(101, "5550101"); err != nil {
		t.Fatal(err)
	}
	err := run(ctx, []string{"disconnect", "--nats-url", rs.natsURL, "--agent", "101", "--number", "5550101", "--wait",
		"--timeout", "30s", "--traceparent", "00-" + traceID + "-00f067aa0ba902b7-01"}, &out)
	if err != nil {
		t.Fatalf("disconnect: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "trace "+traceID) {
		t.Errorf("disconnect output lacks the trace ID:\n%s", out.String())
	}
	d := rs.sim.Disconnects()
	if len(d) != 1 || !strings.Contains(d[0].Traceparent, traceID) {
		t.Errorf("gateway requests %+v, want one in trace %s", d, traceID)
	}
	// The batching exporter writes every 5 s.
	testenv.WaitFor(t, 20*time.Second, "the spans of the command", func() bool {
		s := rs.stdout.String()
		return strings.Count(s, `"TraceID":"`+traceID+`"`) >= 3 && strings.Contains(s, `"Name":"disconnect"`) &&
			strings.Contains(s, `"Name":"gateway.disconnect"`) && strings.Contains(s, `"Name":"confirm"`)
	})
	if s := rs.stdout.String(); strings.Contains(s, "5550101") || strings.Contains(s, "AgentGateway") {
		t.Errorf("spans hold the number or a GUID:\n%s", s)
	}
}
