package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The span exporters [NewProvider] knows.
const (
	ExporterNone   = "none"   // no spans recorded; trace context is still propagated
	ExporterStdout = "stdout" // JSON spans on ProviderConfig.Stdout
	ExporterOTLP   = "otlp"   // OTLP/HTTP, configured by the OTEL_EXPORTER_OTLP_* variables
)

// ErrUnknownExporter is a [ProviderConfig.Exporter] that is none of the
// Exporter constants; an [*ExporterError] wraps it.
var ErrUnknownExporter = errors.New("must be none, stdout or otlp")

// ExporterError is an exporter that cannot be set up: an unknown name
// ([ErrUnknownExporter]), OTLP over gRPC asked for, a malformed
// OTEL_RESOURCE_ATTRIBUTES, or the exporter's own error.
type ExporterError struct {
	Exporter string
	Err      error
}

func (e *ExporterError) Error() string {
	return fmt.Sprintf("tracing: exporter %q: %v", e.Exporter, e.Err)
}

// Unwrap returns Err.
func (e *ExporterError) Unwrap() error { return e.Err }

// ProviderConfig is where [NewProvider]'s spans go.
type ProviderConfig struct {
	// Exporter is one of the Exporter constants.
	Exporter string
	// ServiceName is the resource's service.name, unless OTEL_SERVICE_NAME
	// or OTEL_RESOURCE_ATTRIBUTES say otherwise.
	ServiceName string
	// Stdout receives the spans of [ExporterStdout].
	Stdout io.Writer
	// OnError receives what OpenTelemetry reports (an export that failed,
	// an OTEL_* value it could not parse and ignored): a message and the
	// error, never its key-value pairs, which can quote an
	// OTEL_EXPORTER_OTLP_HEADERS value (maybe a secret). When set,
	// NewProvider installs it as OpenTelemetry's global error handler and
	// logger; nil leaves those alone.
	OnError func(msg string, err error)
}

// NewProvider returns a tracer provider recording spans with a batching
// exporter (nil for [ExporterNone]: the global no-op provider), and a func
// that flushes and stops it, waiting at most 5 s. The OTLP exporter reads
// the standard OTEL_EXPORTER_OTLP_* variables itself; OTLP over gRPC is
// refused, as only the HTTP exporter is built in. A setup error is an
// [*ExporterError].
func NewProvider(ctx context.Context, cfg ProviderConfig) (trace.TracerProvider, func(), error) {
	switch cfg.Exporter {
	case ExporterNone:
		return nil, func() {}, nil
	case ExporterStdout, ExporterOTLP:
	default:
		return nil, nil, &ExporterError{cfg.Exporter, ErrUnknownExporter}
	}
	exp, res, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, nil, &ExporterError{cfg.Exporter, err}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}

// newExporter returns cfg's exporter and resource.
func newExporter(ctx context.Context, cfg ProviderConfig) (sdktrace.SpanExporter, *resource.Resource, error) {
	if err := checkOTLPProtocol(cfg.Exporter); err != nil {
		return nil, nil, err
	}
	res, err := serviceResource(ctx, cfg.ServiceName)
	if err != nil {
		return nil, nil, err
	}
	// Before the exporter: the OTLP one reports the variables it cannot
	// parse through the global logger, whose default writes plain text.
	if cfg.OnError != nil {
		routeOTelErrors(cfg.OnError)
	}
	var exp sdktrace.SpanExporter
	if cfg.Exporter == ExporterStdout {
		exp, err = stdouttrace.New(stdouttrace.WithWriter(cfg.Stdout))
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	return exp, res, err
}

// serviceResource is service.name name, overridden by OTEL_SERVICE_NAME
// and completed by OTEL_RESOURCE_ATTRIBUTES (later detectors win).
func serviceResource(ctx context.Context, name string) (*resource.Resource, error) {
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", name)), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: must be key=value pairs, comma separated, values URL-encoded: %w", err)
	}
	return res, nil
}

// checkOTLPProtocol refuses OTLP over gRPC: only the HTTP exporter is
// built in, and it would send HTTP to a gRPC port (4317) without saying so.
func checkOTLPProtocol(exporter string) error {
	if exporter != ExporterOTLP {
		return nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v, ok := os.LookupEnv(name); ok && v == "grpc" {
			return fmt.Errorf("%s=grpc: only OTLP over HTTP is built in (http/protobuf or http/json); "+
				"point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)", name)
		}
	}
	return nil
}

// routeOTelErrors sends what OpenTelemetry reports to onError: failed
// exports through the global error handler, the rest through the global
// logr logger, keeping only the message and the error.
func routeOTelErrors(onError func(string, error)) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		onError("opentelemetry: span export failed", err)
	}))
	otel.SetLogger(logr.New(otelSink{onError}))
}

// otelSink is a logr sink passing OpenTelemetry's errors to onError,
// without their key-value pairs (see routeOTelErrors).
type otelSink struct{ onError func(string, error) }

func (otelSink) Init(logr.RuntimeInfo)            {}
func (otelSink) Enabled(int) bool                 { return false } // its info lines are debug output
func (otelSink) Info(int, string, ...any)         {}
func (s otelSink) WithValues(...any) logr.LogSink { return s }
func (s otelSink) WithName(string) logr.LogSink   { return s }
func (s otelSink) Error(err error, msg string, _ ...any) {
	if err == nil {
		err = errors.New("(no error)")
	}
	s.onError("opentelemetry: "+msg, err)
}
