package worker

import (
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// observeOutcome records a disposed delivery in the metrics: a terminal
// outcome that was carried out (ackErr nil) counts as a command by status
// and retcode, and an acceptance observes the latency from issued_at. A
// result replayed from the ledger (an earlier delivery stored it) was
// counted by that delivery.
func (w *Worker) observeOutcome(out outcome, ackErr error) {
	m := w.cfg.Metrics
	if m == nil || out.res == nil || ackErr != nil || !out.store && out.res.Status != events.StatusRejected {
		return
	}
	m.CommandDone(string(out.res.Status), out.res.RetCode)
	if out.res.Status == events.StatusAccepted {
		m.Accepted(out.res.IssuedAt, out.res.CompletedAt)
	}
}

// observeDelivery records how much of AckWait a delivery fetched at start
// left unused.
func (w *Worker) observeDelivery(start time.Time) {
	w.cfg.Metrics.AckWaitMargin(w.cfg.AckWait - time.Since(start))
}
