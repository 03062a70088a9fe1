package ledger

import (
	"context"
	"testing"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

func open(t *testing.T) Ledger {
	t.Helper()
	_, js := testenv.Connect(t, testenv.JetStream(t))
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: events.BucketLedger, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return New(kv)
}

// A delivery that finds another's "started" record takes it over, and from
// then on only its outcome can be stored: the earlier delivery, alive but
// without the agent (its lease renewals failed), cannot overwrite it. This
// is the fence docs/model/ledger.pml checks (OLD_DONE_PUT).
func TestTakeoverFencesTheEarlierDelivery(t *testing.T) {
	l, ctx := open(t), context.Background()
	recA, revA, err := l.Start(ctx, "fenced", "worker-a", "")
	if err != nil || recA != nil || revA == 0 {
		t.Fatalf("first start: %+v, %d, %v; want a new record", recA, revA, err)
	}
	recB, revB, err := l.Start(ctx, "fenced", "worker-b", "")
	if err != nil || recB == nil || recB.State != StateStarted || recB.Owner != "worker-a" || revB <= revA {
		t.Fatalf("second start: %+v, %d, %v; want worker-a's started record taken over at a newer revision", recB, revB, err)
	}
	lateA := &events.Result{CommandID: "fenced", Status: events.StatusAccepted}
	if err := l.DoneAt(ctx, lateA, revA, 0); err == nil {
		t.Fatal("the earlier delivery stored its outcome over the record taken over from it")
	}
	byB := &events.Result{CommandID: "fenced", Status: events.StatusAccepted, Reason: events.ReasonAlreadyReleased}
	if err := l.DoneAt(ctx, byB, revB, 0); err != nil {
		t.Fatalf("the delivery holding the record: %v", err)
	}
	got, _, err := l.Get(ctx, "fenced")
	if err != nil || got == nil || got.State != StateDone || got.Result.Reason != events.ReasonAlreadyReleased {
		t.Fatalf("ledger = %+v, %v; want worker-b's outcome", got, err)
	}
	// A later delivery finds it done: no takeover, the stored outcome.
	if rec, _, err := l.Start(ctx, "fenced", "worker-c", ""); err != nil || rec == nil || rec.State != StateDone {
		t.Fatalf("third start: %+v, %v; want the done record", rec, err)
	}
}

// The first pin wins: a takeover keeps the call the record was scoped to.
func TestTakeoverKeepsThePin(t *testing.T) {
	l, ctx := open(t), context.Background()
	_, rev, err := l.Start(ctx, "pinned", "worker-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pin(ctx, "pinned", "worker-a", "call-1", rev); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pin(ctx, "pinned", "worker-a", "call-x", rev); err == nil {
		t.Fatal("a pin over a stale revision was stored")
	}
	rec, _, err := l.Start(ctx, "pinned", "worker-b", "call-2")
	if err != nil || rec == nil || rec.CallID != "call-1" {
		t.Fatalf("takeover found %+v, %v; want the record pinned to call-1", rec, err)
	}
	if got, _, _ := l.Get(ctx, "pinned"); got == nil || got.CallID != "call-1" || got.Owner != "worker-b" {
		t.Fatalf("after the takeover: %+v; want worker-b's, still pinned to call-1", got)
	}
}

func TestDecide(t *testing.T) {
	res := &events.Result{CommandID: "c", Status: events.StatusFailed}
	for _, tt := range []struct {
		name string
		rec  *Record
		want Verdict
	}{
		{"none", nil, Store},
		{"started", &Record{State: StateStarted, Owner: "w"}, Contended},
		{"done", &Record{State: StateDone, Result: res}, Republish},
		{"done without a result", &Record{State: StateDone}, Store},
	} {
		if got := Decide(tt.rec); got != tt.want {
			t.Errorf("%s: Decide = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// Clear deletes only the revision read; the replay's ID names the delete
// marker, so the same clear gives the same ID and a new clear a new one.
func TestClearAndReplayMsgID(t *testing.T) {
	l, ctx := open(t), context.Background()
	if id, err := l.ReplayMsgID(ctx, "gone", 7); err != nil || id != "replay-gone-dlq7" {
		t.Fatalf("no record: %q, %v", id, err)
	}
	_, rev, err := l.Start(ctx, "r1", "w", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Clear(ctx, "r1", rev+1); err == nil {
		t.Fatal("cleared over a revision that is not the record's")
	}
	if _, err := l.ReplayMsgID(ctx, "r1", 7); err == nil {
		t.Fatal("a replay ID while the record is there")
	}
	e, err := l.Entry(ctx, "r1")
	if err != nil || e == nil || e.Revision != rev || e.Updated.IsZero() {
		t.Fatalf("entry = %+v, %v", e, err)
	}
	if err := l.Clear(ctx, "r1", rev); err != nil {
		t.Fatal(err)
	}
	first, err := l.ReplayMsgID(ctx, "r1", 7)
	if again, _ := l.ReplayMsgID(ctx, "r1", 7); err != nil || first != again || first == "replay-r1-dlq7" {
		t.Fatalf("replay IDs %q and %q, %v: want one ID naming the marker", first, again, err)
	}
}
