package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The worker counts each command once by status and retcode, observes the
// gateway requests, the acceptance latency and the AckWait margin, and
// puts no number, GUID or command ID in a label.
func TestWorkerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Metrics = m
	b := setup(t, cfg, gatewaysim.Config{})
	guids := b.signIn([]int{1101}, customer)
	b.signIn([]int{1102}, nil) // signed in, no call: the call check fails it, no request
	b.signIn([]int{1103}, nil) // no call either, but its call state says there is one: 200-023
	b.callState(1103, "ghost-1", customer(1103))
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "m-accepted", AgentID: 1101, Number: customer(1101), TTL: time.Minute})
	b.publish(events.DisconnectCommand{CommandID: "m-failed", AgentID: 1102, Number: customer(1102), TTL: time.Minute})
	b.publish(events.DisconnectCommand{CommandID: "m-gone", AgentID: 1103, Number: customer(1103), TTL: time.Minute})
	b.publishRaw([]byte(`{"command_id":"m-rejected","agent_id":42,"number":"1"}`), "m-rejected")
	b.waitResults(4, 20*time.Second)

	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"callcontrol_commands_total", map[string]string{"status": "accepted", "retcode": "0"}, 1},
		{"callcontrol_commands_total", map[string]string{"status": "failed", "retcode": ""}, 1},
		{"callcontrol_commands_total", map[string]string{"status": "failed", "retcode": "200-023"}, 1},
		{"callcontrol_commands_total", map[string]string{"status": "rejected", "retcode": ""}, 1},
		{"callcontrol_gateway_requests_total", map[string]string{"op": "disconnect", "class": "success"}, 1},
		{"callcontrol_gateway_requests_total", map[string]string{"op": "disconnect", "class": "already_done"}, 1},
		{"callcontrol_gateway_requests_total", map[string]string{"op": "callinfo", "class": "success"}, 2},
		{"callcontrol_gateway_request_duration_seconds", map[string]string{"op": "disconnect"}, 2},
		{"callcontrol_gateway_request_duration_seconds", map[string]string{"op": "callinfo"}, 2},
		{"callcontrol_accept_latency_seconds", nil, 1},
		{"callcontrol_ack_wait_margin_seconds", nil, 4},
	}
	for _, w := range want {
		testenv.WaitFor(t, 5*time.Second, w.name, func() bool { return sample(t, reg, w.name, w.labels) == w.value })
	}

	// A redelivered command whose result is stored is not counted again.
	b.publishRaw([]byte(`{"command_id":"m-accepted","agent_id":1101,"number":"`+customer(1101)+`"}`), "")
	testenv.WaitFor(t, 5*time.Second, "the replayed delivery", func() bool {
		return sample(t, reg, "callcontrol_ack_wait_margin_seconds", nil) == 5
	})
	if v := sample(t, reg, "callcontrol_commands_total", map[string]string{"status": "accepted", "retcode": "0"}); v != 1 {
		t.Fatalf("accepted after a replay = %v, want 1", v)
	}

	secrets := append([]string{customer(1101), customer(1102), "m-accepted", "m-failed"}, guids[1101])
	for _, l := range labelValues(t, reg) {
		for _, s := range secrets {
			if strings.Contains(l, s) {
				t.Errorf("label value %q holds %q", l, s)
			}
		}
	}
}

// The window no call check closes is observed for each disconnect sent on
// a passed check: from the moment its information was true (the call
// state's observed_at; the call-info query's sending) to the answer.
func TestCallCheckWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	const latency, stateAge = 100 * time.Millisecond, 2 * time.Second
	cfg := testConfig()
	cfg.Metrics, cfg.CallStateMaxAge = m, time.Minute
	b := setup(t, cfg, gatewaysim.Config{Latency: latency})
	b.signIn([]int{1111, 1112}, customer)
	b.callStateAt(1112, time.Now().Add(-stateAge), b.lastCall(1112), customer(1112))
	b.startWorker(nil)
	b.publish(events.DisconnectCommand{CommandID: "w-call-info", AgentID: 1111, Number: customer(1111), TTL: time.Minute})
	b.publish(events.DisconnectCommand{CommandID: "w-state", AgentID: 1112, Number: customer(1112), TTL: time.Minute})
	b.waitResults(2, 20*time.Second)
	testenv.WaitFor(t, 5*time.Second, "the check-to-answer observations", func() bool {
		return sample(t, reg, "callcontrol_call_check_to_answer_seconds", nil) == 2
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    time.Duration
	}{
		{"callcontrol_call_check_window_seconds", map[string]string{"source": metrics.CheckCallInfo}, 2 * latency}, // the query, then the disconnect
		{"callcontrol_call_check_window_seconds", map[string]string{"source": metrics.CheckState}, stateAge + latency},
		{"callcontrol_call_check_to_answer_seconds", nil, 2 * latency},
	} {
		n, sum := histogram(t, reg, c.name, c.labels)
		if n == 0 || sum < c.min.Seconds() || sum > c.min.Seconds()+10 {
			t.Errorf("%s%v: %v observations summing to %.3fs, want at least one, summing to %v or a little more", c.name, c.labels, n, sum, c.min)
		}
	}
}

// histogram returns the sample count and sum of name's series with labels.
func histogram(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (n uint64, sum float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && hasLabels(m, labels) && m.Histogram != nil {
				n += m.Histogram.GetSampleCount()
				sum += m.Histogram.GetSampleSum()
			}
		}
	}
	return n, sum
}

// sample returns the value of the series of name whose labels include
// labels: a counter's or gauge's value, a histogram's sample count; the
// sum over matching series; 0 if none.
func sample(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// labelValues returns every label value of every series in g.
func labelValues(t testing.TB, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}
