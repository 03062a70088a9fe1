package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSpan is one span as an OTLP/HTTP receiver got it.
type otlpSpan struct {
	service, name             string
	traceID, spanID, parentID string
	resource                  map[string]string
}

// otlpReceiver is an OTLP/HTTP trace receiver: POST /v1/traces with a
// protobuf ExportTraceServiceRequest, as a collector takes it.
type otlpReceiver struct {
	url string // http://127.0.0.1:<port>, for OTEL_EXPORTER_OTLP_ENDPOINT

	mu      sync.Mutex
	spans   []otlpSpan
	headers []http.Header
	bad     []string // requests that were not a valid export
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.reject(w, fmt.Sprintf("%s %s (%s)", req.Method, req.URL.Path, req.Header.Get("Content-Type")))
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.reject(w, err.Error())
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	var export coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &export)
	}
	if err != nil {
		r.reject(w, err.Error())
		return
	}
	r.record(req.Header, &export)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *otlpReceiver) reject(w http.ResponseWriter, why string) {
	r.mu.Lock()
	r.bad = append(r.bad, why)
	r.mu.Unlock()
	http.Error(w, why, http.StatusBadRequest)
}

func (r *otlpReceiver) record(h http.Header, export *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headers = append(r.headers, h.Clone())
	for _, rs := range export.GetResourceSpans() {
		attrs := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, otlpSpan{service: attrs["service.name"], name: s.GetName(),
					traceID: hex.EncodeToString(s.GetTraceId()), spanID: hex.EncodeToString(s.GetSpanId()),
					parentID: hex.EncodeToString(s.GetParentSpanId()), resource: attrs})
			}
		}
	}
}

// received returns the spans so far, the requests' headers and what was
// rejected.
func (r *otlpReceiver) received() ([]otlpSpan, []http.Header, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]otlpSpan(nil), r.spans...), append([]http.Header(nil), r.headers...), append([]string(nil), r.bad...)
}

// span returns the span called name that service sent, if any.
func span(spans []otlpSpan, service, name string) (otlpSpan, bool) {
	for _, s := range spans {
		if s.service == service && s.name == name {
			return s, true
		}
	}
	return otlpSpan{}, false
}

// One command with --otel-exporter otlp (from the environment, with the
// standard OTEL_* variables only): the worker and the poller export over
// OTLP/HTTP, with the headers and resource attributes those variables
// give, the spans of the command's whole way in the one trace that
// `disconnect --traceparent` started: the worker's delivery (child of the
// publisher's span), its gateway request (whose span ID the simulator got
// in the traceparent header), the result (naming the delivery) and the
// poller's confirmation (child of the delivery, and named by the
// confirmation message).
func TestOTLPExportFollowsOneCommand(t *testing.T) {
	const trace, publisher = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	recv := startOTLPReceiver(t)
	t.Setenv("CALLCONTROL_OTEL_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.url)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0ken")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms; the default, 5 s, only slows the test
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
		"--timeout", "30s", "--traceparent", "00-" + trace + "-" + publisher + "-01"}, &out)
	if err != nil {
		t.Fatalf("disconnect: %v\n%s", err, out.String())
	}

	var spans []otlpSpan
	testenv.WaitFor(t, 20*time.Second, "the worker's and the poller's spans at the receiver", func() bool {
		spans, _, _ = recv.received()
		_, w := span(spans, "callcontrol-worker", "gateway.disconnect")
		_, p := span(spans, "callcontrol-poller", "confirm")
		return w && p
	})
	spans, headers, bad := recv.received()
	if len(bad) > 0 {
		t.Errorf("receiver rejected requests: %q", bad)
	}
	for _, s := range spans {
		if s.traceID != trace {
			t.Errorf("span %s of %s in trace %s, want every span in %s", s.name, s.service, s.traceID, trace)
		}
		if s.resource["deployment.environment"] != "test" {
			t.Errorf("span %s: resource %v lacks OTEL_RESOURCE_ATTRIBUTES", s.name, s.resource)
		}
	}
	for _, h := range headers {
		if h.Get("X-Collector-Token") != "t0ken" {
			t.Errorf("export request without OTEL_EXPORTER_OTLP_HEADERS: %v", h)
		}
	}
	delivery, _ := span(spans, "callcontrol-worker", "disconnect")
	request, _ := span(spans, "callcontrol-worker", "gateway.disconnect")
	confirm, _ := span(spans, "callcontrol-poller", "confirm")
	if delivery.parentID != publisher || request.parentID != delivery.spanID || confirm.parentID != delivery.spanID {
		t.Errorf("span parents: disconnect %s (want %s), gateway.disconnect %s and confirm %s (want %s)",
			delivery.parentID, publisher, request.parentID, confirm.parentID, delivery.spanID)
	}
	if d := rs.sim.Disconnects(); len(d) != 1 || d[0].Traceparent != "00-"+trace+"-"+request.spanID+"-01" {
		t.Errorf("gateway requests %+v, want one naming span %s", d, request.spanID)
	}
	_, js := testenv.Connect(t, rs.natsURL)
	if tp := firstTraceparent(t, js, events.StreamResults, events.SubjectResults+".>"); tp != "00-"+trace+"-"+delivery.spanID+"-01" {
		t.Errorf("result traceparent %q, want the disconnect span %s", tp, delivery.spanID)
	}
	if tp := firstTraceparent(t, js, events.StreamEvents, events.SubjectConfirmations+".>"); tp != "00-"+trace+"-"+confirm.spanID+"-01" {
		t.Errorf("confirmation traceparent %q, want the confirm span %s", tp, confirm.spanID)
	}
}

// firstTraceparent returns the traceparent header of the first message on
// subject in stream.
func firstTraceparent(t *testing.T, js jetstream.JetStream, stream, subject string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := newAdmin(js).Tail(ctx, stream, subject, true)
	if err != nil {
		t.Fatal(err)
	}
	defer msgs.Stop()
	m, err := msgs.Next()
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	return m.Headers().Get(events.HeaderTraceparent)
}

// What the OTLP exporter cannot do is refused at start, naming the flag,
// the variable and the rule.
func TestOTLPSettingsRefused(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "--otel-exporter (CALLCONTROL_OTEL_EXPORTER) otlp: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"},
		{map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "no-equals-sign"}, "--otel-exporter (CALLCONTROL_OTEL_EXPORTER) otlp: OTEL_RESOURCE_ATTRIBUTES: must be key=value pairs"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			for _, role := range []string{"worker", "poller", "dev"} {
				// NATS unreachable: the error must come before connecting.
				args := []string{role, "--otel-exporter", "otlp", "--nats-url", "nats://127.0.0.1:1", "--connect-timeout", "1s", "--gateway-url", "https://gw:8043"}
				if role == "dev" {
					args = []string{role, "--otel-exporter", "otlp", "--nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}
				}
				err := run(context.Background(), args, io.Discard)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%s: error = %v, want it to contain %q", role, err, c.want)
				}
			}
		})
	}
}

// An OTEL_* value the exporter cannot parse (it ignores it) is a WARN line
// in the role's log format, not plain text on stderr, and the line does
// not quote the value: a header may hold a collector's token.
func TestOTLPBadVariableLogged(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization-s3cret")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
	var logs testenv.SyncBuffer
	tf := traceFlags{exporter: "otlp"}
	_, stop, err := tf.provider(io.Discard, "worker", zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	l := logs.String()
	for _, want := range []string{`"level":"warn"`, "parse headers", "parse duration"} {
		if !strings.Contains(l, want) {
			t.Errorf("logs lack %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, "s3cret") {
		t.Errorf("logs quote the header:\n%s", l)
	}
}

// The README's OTLP line, as written: its variables, and the command of
// `make run` (as make prints it), run here against a receiver of the
// test's. The README names the collector's default port on this machine;
// the test keeps the endpoint's scheme (plain HTTP) and takes its own
// port, as TestDevAndReadmeDisconnect takes its own NATS port. The README's
// disconnect example beside it sends the spans of its command, in the
// trace it prints, as callcontrol-dev.
func TestReadmeOTLPRun(t *testing.T) {
	fields := strings.Fields(readmeLine(t, "OTEL_EXPORTER_OTLP_ENDPOINT="))
	recv := startOTLPReceiver(t)
	i := 0
	for ; i < len(fields) && strings.Contains(fields[i], "="); i++ {
		k, v, _ := strings.Cut(fields[i], "=")
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			u, err := url.Parse(v)
			if err != nil || u.Scheme != "http" || u.Path != "" {
				t.Fatalf("README endpoint %q: want a plain-HTTP base URL", v)
			}
			v = recv.url
		}
		t.Setenv(k, v)
	}
	if cmd := strings.Join(fields[i:], " "); cmd != "make run" {
		t.Fatalf("README OTLP line runs %q, want make run", cmd)
	}
	recipe, err := exec.Command("make", "-C", "../..", "-s", "--no-print-directory", "-n", "run", "GO=go").Output()
	if err != nil {
		t.Fatalf("make -n run: %v", err)
	}
	devArgs, ok := strings.CutPrefix(strings.TrimSpace(string(recipe)), "go run ./cmd/callcontrol ")
	if !ok {
		t.Fatalf("make run runs %q, not go run ./cmd/callcontrol", recipe)
	}
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms; the default, 5 s, only slows the test
	natsURL, _, _ := startDev(t, strings.Fields(devArgs)...)

	var out bytes.Buffer
	args := append(append([]string{"disconnect"}, readmeCommand(t, "go run ./cmd/callcontrol disconnect")...), "--nats-url", natsURL)
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("disconnect: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`trace ([0-9a-f]{32})`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("disconnect printed no trace ID:\n%s", out.String())
	}
	testenv.WaitFor(t, 20*time.Second, "the command's spans from callcontrol-dev", func() bool {
		spans, _, _ := recv.received()
		for _, name := range []string{"disconnect", "gateway.disconnect", "confirm"} {
			if s, ok := span(spans, "callcontrol-dev", name); !ok || s.traceID != m[1] {
				return false
			}
		}
		return true
	})
}
