package tracing

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// NewProvider: none is the global no-op provider, an unknown exporter and
// OTLP over gRPC are *ExporterError values, stdout writes the spans with
// the service name.
func TestNewProvider(t *testing.T) {
	prov, stop, err := NewProvider(context.Background(), ProviderConfig{Exporter: ExporterNone})
	if err != nil || prov != nil {
		t.Fatalf("none: %v, %v", prov, err)
	}
	stop()
	_, _, err = NewProvider(context.Background(), ProviderConfig{Exporter: "jaeger"})
	var ee *ExporterError
	if !errors.Is(err, ErrUnknownExporter) || !errors.As(err, &ee) || ee.Exporter != "jaeger" {
		t.Fatalf("unknown exporter: %v", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if _, _, err = NewProvider(context.Background(), ProviderConfig{Exporter: ExporterOTLP}); !errors.As(err, &ee) ||
		!strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP") {
		t.Fatalf("otlp over grpc: %v", err)
	}
	var out bytes.Buffer
	prov, stop, err = NewProvider(context.Background(), ProviderConfig{Exporter: ExporterStdout, ServiceName: "callcontrol-test", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	_, span := Tracer(prov).Start(context.Background(), "probe")
	span.End()
	stop()
	if s := out.String(); !strings.Contains(s, `"Name":"probe"`) || !strings.Contains(s, "callcontrol-test") {
		t.Fatalf("stdout spans:\n%s", s)
	}
}
