package poller

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	testTP      = "00-" + testTraceID + "-00f067aa0ba902b7-01"
)

// publishTraced sends cmd with traceparent (none when empty).
func (b *bundle) publishTraced(cmd events.DisconnectCommand, traceparent string) {
	b.t.Helper()
	data, _ := json.Marshal(cmd)
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	m.Header.Set(events.HeaderMsgID, cmd.CommandID)
	if traceparent != "" {
		m.Header.Set(events.HeaderTraceparent, traceparent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		b.t.Fatal(err)
	}
}

// confirmationTraceparents runs a worker and a poller (both with tp, nil
// for the no-op default) and a traced command (agent 101) and an untraced
// one (agent 102), and returns the traceparent of each confirmation.
func confirmationTraceparents(t *testing.T, tp trace.TracerProvider) (traced, untraced string) {
	b := setup(t, Config{LeaseTTL: 6 * time.Second, PollTimeout: 3 * time.Second, TracerProvider: tp},
		gatewaysim.Config{PollHold: 500 * time.Millisecond})
	b.signIn([]int{101, 102})
	for _, a := range []int{101, 102} {
		if _, err := b.sim.StartCall(a, customerOf(a)); err != nil {
			t.Fatal(err)
		}
	}
	b.startReplica("p1")
	b.startWorker(worker.Config{TracerProvider: tp})
	b.publishTraced(events.DisconnectCommand{CommandID: "traced", AgentID: 101, Number: customerOf(101)}, testTP)
	b.publishTraced(events.DisconnectCommand{CommandID: "untraced", AgentID: 102, Number: customerOf(102)}, "")
	subject := events.ConfirmationSubject(events.ConfirmationConfirmed)
	testenv.WaitFor(t, 20*time.Second, "both confirmations", func() bool {
		return len(byCommand[events.Confirmation](b, events.StreamEvents, subject)) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); ; seq++ { // the events stream is short here
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		if m.Subject != subject {
			continue
		}
		switch m.Header.Get(events.HeaderCommandID) {
		case "traced":
			traced = m.Header.Get(events.HeaderTraceparent)
		case "untraced":
			untraced = m.Header.Get(events.HeaderTraceparent)
		}
	}
	return traced, untraced
}

// With the default no-op provider the confirmation of a traced command
// carries the command's traceparent unchanged; an untraced one carries none.
func TestConfirmationCarriesTraceparent(t *testing.T) {
	traced, untraced := confirmationTraceparents(t, nil)
	if traced != testTP {
		t.Errorf("traced confirmation: traceparent %q, want %q", traced, testTP)
	}
	if untraced != "" {
		t.Errorf("untraced confirmation: traceparent %q, want none", untraced)
	}
}

// With a recording provider the poller's "confirm" span is a child of the
// worker's "disconnect" span, in the command's trace, and the confirmation
// carries it. No span attribute holds the number.
func TestConfirmSpanJoinsTheCommandsTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	traced, _ := confirmationTraceparents(t, tp)

	var disconnect, confirm tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() != testTraceID {
			continue // the untraced command's
		}
		switch s.Name {
		case "disconnect":
			disconnect = s
		case "confirm":
			confirm = s
		}
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), customerOf(101)) {
				t.Errorf("span %s attribute %s holds the number", s.Name, a.Key)
			}
		}
	}
	if !disconnect.SpanContext.IsValid() || !confirm.SpanContext.IsValid() {
		t.Fatalf("spans of the traced command: disconnect %v, confirm %v", disconnect.SpanContext, confirm.SpanContext)
	}
	if confirm.Parent.SpanID() != disconnect.SpanContext.SpanID() {
		t.Errorf("confirm span's parent %s, want the disconnect span %s", confirm.Parent.SpanID(), disconnect.SpanContext.SpanID())
	}
	if want := "00-" + testTraceID + "-" + confirm.SpanContext.SpanID().String() + "-01"; traced != want {
		t.Errorf("confirmation traceparent %q, want %q", traced, want)
	}
}
