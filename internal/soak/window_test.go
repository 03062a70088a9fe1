package soak

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// The soak's window line sums the last page of each worker process and
// ignores the other processes.
func TestWindows(t *testing.T) {
	page := func(name string, windows ...time.Duration) string {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		for _, w := range windows {
			m.CallChecked(metrics.CheckState, t0, t0.Add(w/2), t0.Add(w))
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.WriteString("# soak: " + name + "\n")
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	ms := time.Millisecond
	got, err := Windows([]string{
		page("worker-0 pid 10", 4*ms),             // an earlier page of pid 10
		page("worker-0 pid 10", 4*ms, 4*ms, 4*ms), // its last
		page("worker-1 pid 11", 40*ms),
		page("poller-0 pid 12", 400*ms), // not a worker
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "call check window (2 worker processes; bucket bounds): from the call state 4 disconnects, mean 13ms, p50 ≤5ms, p99 ≤50ms, max ≤50ms; " +
		"from the call-info query none; from the check to the answer 4 disconnects, mean 6.5ms, p50 ≤2.5ms, p99 ≤25ms, max ≤25ms"
	if got != want {
		t.Errorf("Windows:\n got %s\nwant %s", got, want)
	}
	if _, err := Windows([]string{"# soak: worker-2 pid 13\nbroken {"}); err == nil || !strings.Contains(err.Error(), "call_check") {
		t.Errorf("a page that does not parse: err %v", err)
	}
}
