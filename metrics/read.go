package metrics

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Histogram is one histogram read from a /metrics page (the sum of its
// series that carry the labels asked for): the bench and the soak read
// the workers' call_check_window_seconds with it.
type Histogram struct {
	Bounds []float64 // the buckets' upper bounds, ascending, without +Inf
	Counts []uint64  // cumulative count per bound
	Count  uint64
	Sum    float64
}

// ReadHistogram reads histogram name from the Prometheus text page r,
// summing the series whose labels include labels. A page without it
// gives an empty Histogram.
func ReadHistogram(r io.Reader, name string, labels map[string]string) (Histogram, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Histogram{}, fmt.Errorf("metrics: read %s: %w", name, err)
	}
	var h Histogram
	for _, m := range mfs[name].GetMetric() {
		if m.Histogram == nil || !hasLabels(m, labels) {
			continue
		}
		var bounds []float64
		var counts []uint64
		for _, b := range m.Histogram.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				bounds, counts = append(bounds, b.GetUpperBound()), append(counts, b.GetCumulativeCount())
			}
		}
		if h.Bounds == nil {
			h.Bounds, h.Counts = bounds, make([]uint64, len(bounds))
		}
		if !slices.Equal(h.Bounds, bounds) {
			return Histogram{}, fmt.Errorf("metrics: read %s: series with different buckets", name)
		}
		for i, c := range counts {
			h.Counts[i] += c
		}
		h.Count += m.Histogram.GetSampleCount()
		h.Sum += m.Histogram.GetSampleSum()
	}
	return h, nil
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
			n++
		}
	}
	return n == len(labels)
}

// Add returns h plus o (the pages of two processes).
func (h Histogram) Add(o Histogram) Histogram { return h.combine(o, 1) }

// Sub returns h minus an earlier reading o of the same process (the
// observations made between the two).
func (h Histogram) Sub(o Histogram) Histogram { return h.combine(o, -1) }

func (h Histogram) combine(o Histogram, sign int) Histogram {
	switch {
	case o.Bounds == nil:
		return h
	case h.Bounds == nil && sign > 0:
		return o
	}
	out := Histogram{Bounds: h.Bounds, Counts: slices.Clone(h.Counts)}
	for i := range out.Counts {
		if i < len(o.Counts) {
			out.Counts[i] = uint64(int64(out.Counts[i]) + int64(sign)*int64(o.Counts[i]))
		}
	}
	out.Count = uint64(int64(h.Count) + int64(sign)*int64(o.Count))
	out.Sum = h.Sum + float64(sign)*o.Sum
	return out
}

// Quantile returns the upper bound of the bucket that holds quantile q
// (0 < q <= 1) of the observations: the q-quantile is at most that. It
// is +Inf past the last bound, 0 without observations.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	for i, c := range h.Counts {
		if c >= rank {
			return time.Duration(h.Bounds[i] * float64(time.Second))
		}
	}
	return time.Duration(math.MaxInt64)
}

// Mean returns the mean observation.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return time.Duration(h.Sum / float64(h.Count) * float64(time.Second))
}
