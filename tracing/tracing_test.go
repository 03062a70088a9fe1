package tracing

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestExtractInject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header nats.Header
		want   string // traceparent injected again; "" for none
	}{
		{"lower case, as the spec writes it", nats.Header{"traceparent": {tp}}, tp},
		{"any case", nats.Header{"Traceparent": {tp}}, tp},
		{"with tracestate", nats.Header{"traceparent": {tp}, "tracestate": {"vendor=1"}}, tp},
		{"none", nats.Header{}, ""},
		{"malformed", nats.Header{"traceparent": {"00-xyz-00f067aa0ba902b7-01"}}, ""},
		{"zero trace id", nats.Header{"traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, ""},
		{"unknown version ff", nats.Header{"traceparent": {"ff" + tp[2:]}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := Extract(context.Background(), tt.header)
			out := nats.Header{}
			Inject(ctx, out)
			if got := out.Get("traceparent"); got != tt.want {
				t.Errorf("injected traceparent %q, want %q", got, tt.want)
			}
			if got := Traceparent(ctx); got != tt.want {
				t.Errorf("Traceparent = %q, want %q", got, tt.want)
			}
			if tt.header.Get("tracestate") != "" && out.Get("tracestate") != "vendor=1" {
				t.Errorf("tracestate %q not carried along", out.Get("tracestate"))
			}
			if Valid(headerCarrier(tt.header).Get("traceparent")) != (tt.want != "") {
				t.Errorf("Valid disagrees with Extract")
			}
		})
	}
}

// With the global no-op provider a span started from a remote context
// keeps that context: the incoming traceparent is passed on unchanged.
func TestNoopProviderKeepsIncomingContext(t *testing.T) {
	t.Parallel()
	ctx, span := Tracer(nil).Start(WithTraceparent(context.Background(), tp), "x")
	defer span.End()
	if span.IsRecording() {
		t.Fatal("the default provider records spans")
	}
	if got := Traceparent(ctx); got != tp {
		t.Errorf("traceparent %q, want %q", got, tp)
	}
	if trace.SpanContextFromContext(WithTraceparent(context.Background(), "")).IsValid() {
		t.Error("an empty traceparent gave a span context")
	}
}

func TestNewTraceparent(t *testing.T) {
	a, b := NewTraceparent(), NewTraceparent()
	if !Valid(a) || a == b || TraceID(a) == TraceID(b) {
		t.Errorf("NewTraceparent: %q, %q", a, b)
	}
}
