package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParent  = "00f067aa0ba902b7"
	testTP      = "00-" + testTraceID + "-" + testParent + "-01"
)

// publishTraced sends cmd with traceparent (none when empty).
func (b *bundle) publishTraced(cmd events.DisconnectCommand, traceparent string) {
	b.t.Helper()
	data, err := json.Marshal(cmd)
	if err != nil {
		b.t.Fatal(err)
	}
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

// lastHeader returns header h of the last message on subject of stream.
func (b *bundle) lastHeader(stream, subject, h string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		b.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		b.t.Fatalf("%s: %v", subject, err)
	}
	return m.Header.Get(h)
}

// pendingTraceparent returns the traceparent of a command's pending record.
func (b *bundle) pendingTraceparent(agent int, id string) string {
	b.t.Helper()
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, events.BucketPending)
	if err != nil {
		b.t.Fatal(err)
	}
	e, err := kv.Get(ctx, events.PendingKey(agent, id))
	if err != nil {
		b.t.Fatal(err)
	}
	var p events.Pending
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		b.t.Fatal(err)
	}
	return p.Traceparent
}

// traced runs an accepted command (agent 101) and a failed one (agent 102,
// no session), both carrying traceparent tp, and returns the traceparents
// of the accepted result, the pending record, the gateway request, the
// failed result and its dead letter.
func traced(t *testing.T, cfg Config, tp string) (accepted, pending, request, failed, dlq string, b *bundle) {
	b = setup(t, cfg, gatewaysim.Config{})
	b.signIn([]int{101}, customer) // 102 has no session
	b.startWorker(nil)
	b.publishTraced(events.DisconnectCommand{CommandID: "ok", AgentID: 101, Number: customer(101)}, tp)
	b.publishTraced(events.DisconnectCommand{CommandID: "nosession", AgentID: 102, Number: customer(102)}, tp)
	res := b.waitResults(2, 10*time.Second)
	if s := res["ok"][0].Status; s != events.StatusAccepted {
		t.Fatalf("ok: %s", s)
	}
	if s := res["nosession"][0].Status; s != events.StatusFailed {
		t.Fatalf("nosession: %s", s)
	}
	accepted = b.lastHeader(events.StreamResults, events.ResultSubject(events.StatusAccepted), events.HeaderTraceparent)
	failed = b.lastHeader(events.StreamResults, events.ResultSubject(events.StatusFailed), events.HeaderTraceparent)
	dlq = b.lastHeader(events.StreamDeadLetter, events.SubjectDeadLetter, events.HeaderTraceparent)
	d := b.sim.Disconnects()
	if len(d) != 1 {
		t.Fatalf("gateway got %d requests, want 1", len(d))
	}
	return accepted, b.pendingTraceparent(101, "ok"), d[0].Traceparent, failed, dlq, b
}

// Without a tracer provider (the default no-op), the command's traceparent
// reaches the gateway, the results, the dead letter and the pending record
// unchanged.
func TestTraceparentPropagatedUnchangedWithoutProvider(t *testing.T) {
	accepted, pending, request, failed, dlq, _ := traced(t, testConfig(), testTP)
	for name, got := range map[string]string{"accepted result": accepted, "pending record": pending,
		"gateway request": request, "failed result": failed, "dead letter": dlq} {
		if got != testTP {
			t.Errorf("%s: traceparent %q, want %q", name, got, testTP)
		}
	}
}

// A command without traceparent, or with a malformed one, is executed as
// before and nothing downstream carries trace context.
func TestTraceparentMissingOrMalformedIgnored(t *testing.T) {
	for _, tp := range []string{"", "00-xyz-" + testParent + "-01", "00-" + strings.Repeat("0", 32) + "-" + testParent + "-01"} {
		t.Run(tp, func(t *testing.T) {
			accepted, pending, request, failed, dlq, _ := traced(t, testConfig(), tp)
			for name, got := range map[string]string{"accepted result": accepted, "pending record": pending,
				"gateway request": request, "failed result": failed, "dead letter": dlq} {
				if got != "" {
					t.Errorf("%s: traceparent %q, want none", name, got)
				}
			}
		})
	}
}

// With a recording provider the worker's spans join the command's trace:
// "disconnect" is a child of the command's traceparent, "gateway.disconnect"
// a child of it and the parent of the gateway request; the result and the
// pending record carry the "disconnect" span. No attribute holds the number
// or the GUID.
func TestSpansJoinTheCommandsTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := testConfig()
	cfg.TracerProvider = tp
	accepted, pending, request, failed, dlq, b := traced(t, cfg, testTP)

	var spans tracetest.SpanStubs
	testenv.WaitFor(t, 5*time.Second, "the spans of both deliveries", func() bool {
		spans = exp.GetSpans()
		n := 0
		for _, s := range spans {
			if s.Name == spanDisconnect {
				n++
			}
		}
		return n == 2
	})
	byCommand := map[string]tracetest.SpanStub{}
	var request0 tracetest.SpanStub
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != testTraceID {
			t.Errorf("span %s in trace %s, want %s", s.Name, s.SpanContext.TraceID(), testTraceID)
		}
		for _, a := range s.Attributes {
			v := a.Value.Emit()
			for _, secret := range append([]string{customer(101), customer(102)}, b.secrets...) {
				if strings.Contains(v, secret) {
					t.Errorf("span %s attribute %s holds the number or the GUID", s.Name, a.Key)
				}
			}
			if a.Key == keyCommandID && s.Name == spanDisconnect {
				byCommand[v] = s
			}
		}
		if strings.Contains(s.Status.Description, customer(101)) {
			t.Errorf("span %s status holds the number", s.Name)
		}
		if s.Name == spanRequest {
			request0 = s
		}
	}
	ok, nosession := byCommand["ok"], byCommand["nosession"]
	if ok.Parent.SpanID().String() != testParent || nosession.Parent.SpanID().String() != testParent {
		t.Errorf("disconnect spans' parents %s, %s, want %s", ok.Parent.SpanID(), nosession.Parent.SpanID(), testParent)
	}
	if request0.Parent.SpanID() != ok.SpanContext.SpanID() {
		t.Errorf("gateway span's parent %s, want the disconnect span %s", request0.Parent.SpanID(), ok.SpanContext.SpanID())
	}
	want := func(name, got string, sc trace.SpanContext) {
		t.Helper()
		if w := "00-" + testTraceID + "-" + sc.SpanID().String() + "-01"; got != w {
			t.Errorf("%s: traceparent %q, want %q", name, got, w)
		}
	}
	want("gateway request", request, request0.SpanContext)
	want("accepted result", accepted, ok.SpanContext)
	want("pending record", pending, ok.SpanContext)
	want("failed result", failed, nosession.SpanContext)
	want("dead letter", dlq, nosession.SpanContext)
	attrs := map[string]string{}
	for _, a := range ok.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range map[string]string{keyCommandID: "ok", keyAgentID: "101", keyAttempt: "1", keyOutcome: "accepted", keyRetcode: "0"} {
		if attrs[k] != v {
			t.Errorf("disconnect span attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
}
