package metrics

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// The call check's window, observed by a worker and read back from its
// /metrics page as the bench and the soak read it.
func TestReadHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	page := func() *bytes.Buffer {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		return &b
	}
	read := func(b *bytes.Buffer, labels map[string]string) Histogram {
		t.Helper()
		h, err := ReadHistogram(bytes.NewReader(b.Bytes()), "callcontrol_call_check_window_seconds", labels)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	t0 := time.Now()
	m.CallChecked(CheckState, t0, t0, t0.Add(3*time.Millisecond))
	before := page()
	for _, d := range []time.Duration{4, 4, 4, 40, 400} {
		m.CallChecked(CheckState, t0, t0, t0.Add(d*time.Millisecond))
	}
	m.CallChecked(CheckCallInfo, t0, t0, t0.Add(20*time.Second))
	m.CallChecked("other", t0, t0, t0.Add(time.Second)) // not a source: not observed
	after := page()

	state := read(after, map[string]string{"source": CheckState}).Sub(read(before, map[string]string{"source": CheckState}))
	if state.Count != 5 || state.Quantile(0.5) != 5*time.Millisecond || state.Quantile(0.8) != 50*time.Millisecond ||
		state.Quantile(1) != 500*time.Millisecond {
		t.Errorf("state window after the first reading: %d observations, p50 %v p80 %v max %v; want 5, 5ms, 50ms, 500ms",
			state.Count, state.Quantile(0.5), state.Quantile(0.8), state.Quantile(1))
	}
	if got, want := state.Mean(), 452*time.Millisecond/5; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("state window mean %v, want %v", got, want)
	}
	all := read(after, nil)
	if all.Count != 7 || all.Quantile(1) < time.Hour {
		t.Errorf("every source: %d observations, max %v; want 7, past the last bucket", all.Count, all.Quantile(1))
	}
	if sum := read(after, map[string]string{"source": CheckCallInfo}).Add(state); sum.Count != 6 {
		t.Errorf("call_info plus state since the first reading: %d observations, want 6", sum.Count)
	}
	if h := read(after, map[string]string{"source": "none"}); h.Count != 0 || h.Quantile(0.99) != 0 {
		t.Errorf("no series: %+v", h)
	}
	if _, err := ReadHistogram(bytes.NewReader([]byte("not a page {")), "x", nil); err == nil {
		t.Error("a page that does not parse read without error")
	}
}
