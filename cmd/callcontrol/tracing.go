package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// traceFlags selects where a long-running role's spans go. Trace context
// is propagated whatever the choice (see package tracing).
type traceFlags struct{ exporter string }

func (t *traceFlags) register(s *settings) {
	s.fs.StringVar(&t.exporter, "otel-exporter", "none",
		"OpenTelemetry span exporter: none (no spans recorded; trace context is still propagated) or stdout (JSON spans on standard output)")
}

// provider returns the tracer provider of the role (nil for none: the
// global no-op one) and a func that flushes and stops it, waiting at most
// 5 s. Spans of the stdout exporter are written to w.
func (t *traceFlags) provider(w io.Writer, role string) (trace.TracerProvider, func(), error) {
	switch t.exporter {
	case "none":
		return nil, func() {}, nil
	case "stdout":
	default:
		return nil, nil, fmt.Errorf("--otel-exporter (CALLCONTROL_OTEL_EXPORTER): must be none or stdout, got %q", t.exporter)
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		return nil, nil, fmt.Errorf("--otel-exporter (CALLCONTROL_OTEL_EXPORTER): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "callcontrol-"+role))))
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}

// newTraceparent returns a new W3C traceparent: a random trace ID and
// parent ID, sampled.
func newTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// traceID returns the trace ID part of a valid traceparent.
func traceID(traceparent string) string { return traceparent[3:35] }
