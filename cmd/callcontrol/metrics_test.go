package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// roleSet is a worker and a poller run by the real binary's code against
// an in-process NATS server and the simulator over HTTPS.
type roleSet struct {
	natsURL string
	gwFlags []string
	sim     *gatewaysim.Sim
	worker  string // health address
	poller  string
	logs    *testenv.SyncBuffer
	stdout  *testenv.SyncBuffer // both roles' standard output (spans of --otel-exporter stdout)
}

// startRoles runs `callcontrol worker` and `callcontrol poller` with
// --health-listen until the test ends, and waits until both are ready.
func startRoles(t *testing.T) *roleSet {
	t.Helper()
	natsURL, _ := testJetStream(t, worker.Config{})
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{PollHold: 300 * time.Millisecond})
	rs := &roleSet{natsURL: natsURL, gwFlags: []string{"--gateway-url", gwURL, "--gateway-ca", ca}, sim: sim,
		worker: freeAddr(t), poller: freeAddr(t), logs: &testenv.SyncBuffer{}, stdout: &testenv.SyncBuffer{}}
	stderr = rs.logs
	t.Cleanup(func() { stderr = os.Stderr })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(args ...string) {
		wg.Go(func() {
			if err := run(ctx, append(args, append([]string{"--nats-url", natsURL}, rs.gwFlags...)...), rs.stdout); err != nil {
				t.Errorf("%s: %v", args[0], err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	start("worker", "--health-listen", rs.worker, "--confirm-within", "10s")
	start("poller", "--health-listen", rs.poller, "--poll-lease-ttl", "3s", "--gateway-poll-timeout", "2s", "--poll-gap", "50ms")
	for _, addr := range []string{rs.worker, rs.poller} {
		testenv.WaitFor(t, 30*time.Second, addr+"/readyz", func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	// Ready is about connections; wait until both roles have provisioned
	// and started too, so that stopping them is a clean stop.
	testenv.WaitFor(t, 30*time.Second, "worker and poller started", func() bool {
		l := rs.logs.String()
		return strings.Contains(l, `"worker started"`) && strings.Contains(l, `"poller started"`)
	})
	return rs
}

// scrape reads GET /metrics of the role at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value is the sum over the series of name whose labels include labels:
// counter or gauge values, histogram sample counts.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if match {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// After a real disconnect (signin, call, `disconnect --wait`), the
// worker's and the poller's /metrics show it: the command accepted with
// retcode 0, one successful disconnect request, its latencies, the
// confirmation, the agent polled and owned. No label holds the number or
// a GUID.
func TestMetricsAfterDisconnect(t *testing.T) {
	rs := startRoles(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, append([]string{"signin", "--agent", "101", "--nats-url", rs.natsURL}, rs.gwFlags...), &out); err != nil {
		t.Fatalf("signin: %v", err)
	}
	if _, err := rs.sim.StartCall(101, "5550101"); err != nil {
		t.Fatal(err)
	}
	err := run(ctx, []string{"disconnect", "--nats-url", rs.natsURL, "--agent", "101", "--number", "5550101", "--wait", "--timeout", "30s"}, &out)
	if err != nil {
		t.Fatalf("disconnect: %v\n%s", err, out.String())
	}

	checks := []struct {
		addr, name string
		labels     []string
		want       func(float64) bool
	}{
		{rs.worker, "callcontrol_commands_total", []string{"status", "accepted", "retcode", "0"}, eq(1)},
		{rs.worker, "callcontrol_commands_total", []string{"status", "failed"}, eq(0)},
		{rs.worker, "callcontrol_gateway_requests_total", []string{"op", "disconnect", "class", "success"}, eq(1)},
		{rs.worker, "callcontrol_gateway_request_duration_seconds", []string{"op", "disconnect"}, eq(1)},
		{rs.worker, "callcontrol_accept_latency_seconds", nil, eq(1)},
		{rs.worker, "callcontrol_ack_wait_margin_seconds", nil, eq(1)},
		{rs.worker, "callcontrol_dead_letter_messages", nil, eq(0)},
		{rs.worker, "callcontrol_gateway_last_answer_timestamp_seconds", nil, func(v float64) bool { return v > 0 }},
		{rs.poller, "callcontrol_confirmations_total", []string{"status", "confirmed"}, eq(1)},
		{rs.poller, "callcontrol_confirm_latency_seconds", nil, eq(1)},
		{rs.poller, "callcontrol_poller_agents_owned", nil, eq(1)},
		{rs.poller, "callcontrol_gateway_requests_total", []string{"op", "poll", "class", "success"}, func(v float64) bool { return v > 0 }},
		{rs.poller, "callcontrol_pending_confirmations", nil, eq(0)},
	}
	for _, c := range checks {
		testenv.WaitFor(t, 10*time.Second, c.name+" "+strings.Join(c.labels, "=")+" on "+c.addr, func() bool {
			return c.want(value(scrape(t, c.addr), c.name, c.labels...))
		})
	}
	for _, addr := range []string{rs.worker, rs.poller} {
		for _, mf := range scrape(t, addr) {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if strings.Contains(lp.GetValue(), "5550101") || strings.Contains(lp.GetValue(), "AgentGateway") {
						t.Errorf("%s: label %s=%q holds the number or a GUID", mf.GetName(), lp.GetName(), lp.GetValue())
					}
				}
			}
		}
	}
	if l := rs.logs.String(); strings.Contains(l, "AgentGateway") || strings.Contains(l, "5550101") {
		t.Errorf("role logs hold a GUID or the unmasked number:\n%s", l)
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
