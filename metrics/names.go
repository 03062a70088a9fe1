package metrics

import (
	"slices"

	"github.com/callcontrol/callcontrol/events"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterDeadLetters registers callcontrol_dead_letter_messages on reg:
// the number of messages in the dead-letter stream, read from depth at
// every scrape. Only a process that reads that stream's info (a worker,
// dev) registers it. It fails if reg already holds it.
func RegisterDeadLetters(reg prometheus.Registerer, depth func() float64) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "dead_letter_messages",
		Help: "Messages in the dead-letter stream " + events.StreamDeadLetter + " (from its stream info, at most 5 s old)."}, depth))
}

// Names returns, sorted, the name of every metric family [New] and
// [RegisterDeadLetters] register: what a worker exports on /metrics
// beside the Go runtime's go_* and the process's process_* families (a
// poller exports the same less the dead-letter depth). Histograms are
// named by family, without _bucket, _sum or _count. The names are
// gathered from a registry of its own, so they cannot drift from what
// the roles register; the alert rules' and the dashboard's tests check
// their queries against them.
func Names() ([]string, error) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		return nil, err
	}
	if err := RegisterDeadLetters(reg, func() float64 { return 0 }); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(mfs))
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	slices.Sort(names)
	return names, nil
}
