// Package tracing carries W3C trace context (traceparent, tracestate)
// through NATS message headers and the Pending record with OpenTelemetry,
// and hands out the tracer the worker and the poller record spans with.
//
// It uses the W3C propagator directly, not the global one, so trace context
// is propagated whether or not a tracer provider is installed. With the
// default (global, no-op) provider a span started from a remote context
// carries that context unchanged: a command's traceparent is then copied
// as it is to what the worker and the poller publish. With a recording
// provider each span gets a span ID of its own, in the same trace.
//
// [NewProvider] sets up the recording provider a role runs with (the
// stdout or OTLP/HTTP exporter, the service resource); the package does
// not log: what OpenTelemetry reports goes to [ProviderConfig.OnError].
package tracing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of callcontrol's spans.
const ScopeName = "github.com/callcontrol/callcontrol"

var w3c = propagation.TraceContext{}

// Tracer returns the tracer of tp, or of the global provider when tp is
// nil (a no-op provider unless the process installed another).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// Extract returns ctx with the remote span context of h's traceparent and
// tracestate headers. A missing or malformed traceparent leaves ctx as it is.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return w3c.Extract(ctx, headerCarrier(h))
}

// Inject sets h's traceparent (and tracestate, when there is one) to the
// span context of ctx; it sets nothing when ctx carries no valid one.
func Inject(ctx context.Context, h nats.Header) {
	w3c.Inject(ctx, headerCarrier(h))
}

// Traceparent returns the traceparent of ctx's span context, or "".
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	w3c.Inject(ctx, c)
	return c.Get("traceparent")
}

// WithTraceparent returns ctx with the remote span context tp; a malformed
// or empty tp leaves ctx as it is.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return w3c.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// Valid reports whether tp is a well-formed traceparent with a valid trace
// and span ID.
func Valid(tp string) bool {
	return trace.SpanContextFromContext(WithTraceparent(context.Background(), tp)).IsValid()
}

// NewTraceparent returns a new W3C traceparent: a random trace ID and
// parent ID, sampled.
func NewTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// TraceID returns the trace ID part (32 hex digits) of a traceparent that
// is [Valid]; it panics on a shorter string.
func TraceID(traceparent string) string { return traceparent[3:35] }

// headerCarrier adapts NATS headers to the propagator. NATS header names
// are case-sensitive: keys are written as the propagator names them (lower
// case, as in the W3C spec) and read in any case.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := nats.Header(c).Get(key); v != "" {
		return v
	}
	for k, v := range c {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
