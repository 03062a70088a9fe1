package soak

import (
	"fmt"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/metrics"
)

// Windows summarises the window no call check closes (README "Call
// scope") as the workers observed it (metrics call_check_window_seconds
// and call_check_to_answer_seconds), from the /metrics pages of a run:
// the last page of each worker process (each page begins with a
// "# soak: <name> pid <pid>" line; a process killed with SIGKILL was
// scraped just before), summed.
func Windows(pages []string) (string, error) {
	last := map[string]string{} // by "name pid"
	for _, p := range pages {
		head, body, _ := strings.Cut(p, "\n")
		proc, ok := strings.CutPrefix(head, "# soak: ")
		if ok && strings.HasPrefix(proc, "worker") {
			last[proc] = body
		}
	}
	var state, info, after metrics.Histogram
	for _, body := range last {
		for _, r := range []struct {
			h      *metrics.Histogram
			name   string
			labels map[string]string
		}{
			{&state, "callcontrol_call_check_window_seconds", map[string]string{"source": metrics.CheckState}},
			{&info, "callcontrol_call_check_window_seconds", map[string]string{"source": metrics.CheckCallInfo}},
			{&after, "callcontrol_call_check_to_answer_seconds", nil},
		} {
			h, err := metrics.ReadHistogram(strings.NewReader(body), r.name, r.labels)
			if err != nil {
				return "", err
			}
			*r.h = r.h.Add(h)
		}
	}
	return fmt.Sprintf("call check window (%d worker processes; bucket bounds): from the call state %s; from the call-info query %s; "+
		"from the check to the answer %s", len(last), quantiles(state), quantiles(info), quantiles(after)), nil
}

func quantiles(h metrics.Histogram) string {
	if h.Count == 0 {
		return "none"
	}
	q := func(p float64) string {
		if d := h.Quantile(p); d < time.Hour {
			return "≤" + d.String()
		}
		return fmt.Sprintf(">%gs", h.Bounds[len(h.Bounds)-1])
	}
	return fmt.Sprintf("%d disconnects, mean %v, p50 %s, p99 %s, max %s", h.Count, h.Mean().Round(100*time.Microsecond), q(0.5), q(0.99), q(1))
}
