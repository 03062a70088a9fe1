package worker

import (
	"context"
	"testing"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// A delivery that finds another's "started" record takes it over, and from
// then on only its outcome can be stored: the earlier delivery, alive but
// without the agent (its lease renewals failed), cannot overwrite it. This
// is the fence docs/model/ledger.pml checks (OLD_DONE_PUT).
func TestLedgerTakeoverFencesTheEarlierDelivery(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	l := ledger{kv: kv}
	recA, revA, err := l.start(ctx, "fenced", "worker-a", "")
	if err != nil || recA != nil || revA == 0 {
		t.Fatalf("first start: %+v, %d, %v; want a new record", recA, revA, err)
	}
	recB, revB, err := l.start(ctx, "fenced", "worker-b", "")
	if err != nil || recB == nil || recB.State != stateStarted || recB.Owner != "worker-a" || revB <= revA {
		t.Fatalf("second start: %+v, %d, %v; want worker-a's started record taken over at a newer revision", recB, revB, err)
	}
	lateA := &events.Result{CommandID: "fenced", Status: events.StatusAccepted}
	if err := l.doneAt(ctx, lateA, revA, 0); err == nil {
		t.Fatal("the earlier delivery stored its outcome over the record taken over from it")
	}
	byB := &events.Result{CommandID: "fenced", Status: events.StatusAccepted, Reason: events.ReasonAlreadyReleased}
	if err := l.doneAt(ctx, byB, revB, 0); err != nil {
		t.Fatalf("the delivery holding the record: %v", err)
	}
	got, _, err := l.get(ctx, "fenced")
	if err != nil || got == nil || got.State != stateDone || got.Result.Reason != events.ReasonAlreadyReleased {
		t.Fatalf("ledger = %+v, %v; want worker-b's outcome", got, err)
	}
	// A later delivery finds it done: no takeover, the stored outcome.
	if rec, _, err := l.start(ctx, "fenced", "worker-c", ""); err != nil || rec == nil || rec.State != stateDone {
		t.Fatalf("third start: %+v, %v; want the done record", rec, err)
	}
}
