package poller

import (
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// With a worker and a poller sharing one Metrics (as `callcontrol dev`
// does), the poller reports its polls, GUID rotations, agents owned, the
// pending confirmations and the confirmations it publishes, and a session
// error.
func TestPollerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Metrics = m
	b := setup(t, cfg, gatewaysim.Config{AuthMode: 2, GUIDInterval: 300 * time.Millisecond, PollHold: 300 * time.Millisecond})
	const confirmed, muted, invalid = 201, 202, 203
	b.signIn([]int{confirmed, muted, invalid})
	for _, a := range []int{confirmed, muted} {
		if _, err := b.sim.StartCall(a, customerOf(a)); err != nil {
			t.Fatal(err)
		}
	}
	b.sim.MuteEvents(muted, true)
	b.startReplica("p1")
	b.startWorker(worker.Config{ConfirmWithin: 3 * time.Second, Metrics: m})
	testenv.WaitFor(t, 15*time.Second, "three agents owned", func() bool { return sample(t, reg, "callcontrol_poller_agents_owned", nil) == 3 })
	testenv.WaitFor(t, 15*time.Second, "a GUID rotation", func() bool { return sample(t, reg, "callcontrol_guid_rotations_total", nil) > 0 })

	for _, a := range []int{confirmed, muted} {
		b.publish(events.DisconnectCommand{CommandID: "m-" + strconv.Itoa(a), AgentID: a, Number: customerOf(a), IssuedAt: time.Now()})
	}
	testenv.WaitFor(t, 15*time.Second, "the muted command pending", func() bool { return sample(t, reg, "callcontrol_pending_confirmations", nil) == 1 })
	testenv.WaitFor(t, 15*time.Second, "one confirmed, one unconfirmed", func() bool {
		return sample(t, reg, "callcontrol_confirmations_total", map[string]string{"status": "confirmed"}) == 1 &&
			sample(t, reg, "callcontrol_confirmations_total", map[string]string{"status": "unconfirmed"}) == 1
	})
	if n := sample(t, reg, "callcontrol_confirm_latency_seconds", nil); n != 1 {
		t.Errorf("confirm latency samples = %v, want 1", n)
	}
	testenv.WaitFor(t, 5*time.Second, "no pending confirmation", func() bool { return sample(t, reg, "callcontrol_pending_confirmations", nil) == 0 })

	// A new sign-in makes the stored GUID invalid: a session error.
	guid, err := b.sim.SignIn(invalid)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.secrets = append(b.secrets, guid)
	b.mu.Unlock()
	testenv.WaitFor(t, 15*time.Second, "a poll session error", func() bool {
		return sample(t, reg, "callcontrol_poll_errors_total", map[string]string{"class": "session"}) >= 1 &&
			sample(t, reg, "callcontrol_session_errors_total", map[string]string{"op": "poll"}) >= 1
	})
	testenv.WaitFor(t, 15*time.Second, "two agents owned", func() bool { return sample(t, reg, "callcontrol_poller_agents_owned", nil) == 2 })
	if n := sample(t, reg, "callcontrol_gateway_requests_total", map[string]string{"op": "poll", "class": "success"}); n == 0 {
		t.Error("no successful poll counted")
	}
	if n := sample(t, reg, "callcontrol_commands_total", map[string]string{"status": "accepted"}); n != 2 {
		t.Errorf("accepted commands = %v, want 2", n)
	}
}

// sample returns the value of the series of name whose labels include
// labels: a counter's or gauge's value, a histogram's sample count; the
// sum over matching series; 0 if none.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
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
			if hasLabels(m, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for k, v := range labels {
		if have[k] != v {
			return false
		}
	}
	return true
}
