package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/callcontrol/callcontrol/tracing"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// traceFlags selects where a long-running role's spans go. Trace context
// is propagated whatever the choice (see package tracing).
type traceFlags struct{ exporter string }

func (t *traceFlags) register(s *settings) {
	defer s.group(groupOutput)()
	s.fs.StringVar(&t.exporter, "otel-exporter", "none",
		"OpenTelemetry span exporter: none (no spans recorded; trace context is still propagated), "+
			"stdout (JSON spans on standard output) or otlp (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://localhost:4318; default https://localhost:4318)")
}

// provider returns the tracer provider of the role (nil for none: the
// global no-op one) and a func that flushes and stops it (see
// tracing.NewProvider). Spans of the stdout exporter are written to w; the
// resource is service.name callcontrol-<role> unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise. What OpenTelemetry reports is
// logged to log as a WARN line.
func (t *traceFlags) provider(w io.Writer, role string, log zerolog.Logger) (trace.TracerProvider, func(), error) {
	tp, stop, err := tracing.NewProvider(context.Background(), tracing.ProviderConfig{
		Exporter:    t.exporter,
		ServiceName: "callcontrol-" + role,
		Stdout:      w,
		OnError:     func(msg string, err error) { log.Warn().Err(err).Msg(msg) },
	})
	var ee *tracing.ExporterError
	switch {
	case errors.Is(err, tracing.ErrUnknownExporter):
		return nil, nil, fmt.Errorf("%s: %v, got %q", flagRef("otel-exporter"), tracing.ErrUnknownExporter, t.exporter)
	case errors.As(err, &ee):
		return nil, nil, fmt.Errorf("%s %s: %w", flagRef("otel-exporter"), ee.Exporter, ee.Err)
	}
	return tp, stop, err
}
