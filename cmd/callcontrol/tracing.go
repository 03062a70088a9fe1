package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
// global no-op one) and a func that flushes and stops it, waiting at most
// 5 s. Spans of the stdout exporter are written to w. The OTLP exporter
// reads the standard OTEL_EXPORTER_OTLP_* variables itself; the resource
// is service.name callcontrol-<role> unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise. What OpenTelemetry reports
// (an export that failed, an OTEL_* value it could not parse and ignored)
// is logged to log as a WARN line.
func (t *traceFlags) provider(w io.Writer, role string, log zerolog.Logger) (trace.TracerProvider, func(), error) {
	switch t.exporter {
	case "none":
		return nil, func() {}, nil
	case "stdout", "otlp":
	default:
		return nil, nil, fmt.Errorf("%s: must be none, stdout or otlp, got %q", flagRef("otel-exporter"), t.exporter)
	}
	if err := checkOTLPProtocol(t.exporter); err != nil {
		return nil, nil, err
	}
	res, err := roleResource(role)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", flagRef("otel-exporter"), t.exporter, err)
	}
	// Before the exporter: the OTLP one reports the variables it cannot
	// parse through the global logger, whose default writes plain text.
	routeOTelErrors(log)
	var exp sdktrace.SpanExporter
	if t.exporter == "stdout" {
		exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
	} else {
		exp, err = otlptracehttp.New(context.Background())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", flagRef("otel-exporter"), t.exporter, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}

// roleResource is service.name callcontrol-<role>, overridden by
// OTEL_SERVICE_NAME and completed by OTEL_RESOURCE_ATTRIBUTES (later
// detectors win).
func roleResource(role string) (*resource.Resource, error) {
	res, err := resource.New(context.Background(),
		resource.WithAttributes(attribute.String("service.name", "callcontrol-"+role)), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: must be key=value pairs, comma separated, values URL-encoded: %w", err)
	}
	return res, nil
}

// checkOTLPProtocol refuses OTLP over gRPC: only the HTTP exporter is
// built in, and it would send HTTP to a gRPC port (4317) without saying so.
func checkOTLPProtocol(exporter string) error {
	if exporter != "otlp" {
		return nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v, ok := os.LookupEnv(name); ok && v == "grpc" {
			return fmt.Errorf("%s otlp: %s=grpc: only OTLP over HTTP is built in (http/protobuf or http/json); "+
				"point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)", flagRef("otel-exporter"), name)
		}
	}
	return nil
}

// routeOTelErrors sends what OpenTelemetry reports (failed exports, bad
// OTEL_* values) to log as WARN lines, so that they are in the role's log
// format. Only the message and the error are kept: the key-value pairs
// can quote an OTEL_EXPORTER_OTLP_HEADERS value, which may be a secret.
func routeOTelErrors(log zerolog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("opentelemetry: span export failed")
	}))
	otel.SetLogger(logr.New(otelSink{log}))
}

// otelSink is a logr sink writing OpenTelemetry's errors to a zerolog
// logger, without their key-value pairs (see routeOTelErrors).
type otelSink struct{ log zerolog.Logger }

func (otelSink) Init(logr.RuntimeInfo)            {}
func (otelSink) Enabled(int) bool                 { return false } // its info lines are debug output
func (otelSink) Info(int, string, ...any)         {}
func (s otelSink) WithValues(...any) logr.LogSink { return s }
func (s otelSink) WithName(string) logr.LogSink   { return s }
func (s otelSink) Error(err error, msg string, _ ...any) {
	if err == nil {
		err = errors.New("(no error)")
	}
	s.log.Warn().Err(err).Msg("opentelemetry: " + msg)
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
