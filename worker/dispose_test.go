package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// The ledger and the pending record of an accepted command are written at
// once. A delivery whose pending write failed after its ledger write
// succeeded Naks; the redelivery finds the command done and replays the
// result, and must write the missing pending record, or the command would
// never be confirmed. A record the poller already settled (deleted) must
// not come back: that would turn into a second, "unconfirmed", outcome.
func TestRedeliveredReplayRestoresMissingPending(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{971, 972}, customer)
	ctx := context.Background()
	ledgerKV, err := b.js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	pendingKV, err := b.js.KeyValue(ctx, events.BucketPending)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, c := range []struct {
		id    string
		agent int
	}{{"lost-pending", 971}, {"settled-pending", 972}} {
		res := events.Result{CommandID: c.id, AgentID: c.agent, Number: customer(c.agent), Status: events.StatusAccepted,
			RetCode: "0", Attempts: 1, IssuedAt: now, CompletedAt: now, ExpiresAt: now.Add(time.Minute)}
		rec, _ := json.Marshal(record{State: stateDone, Result: &res})
		if _, err := ledgerKV.Put(ctx, c.id, rec); err != nil {
			t.Fatal(err)
		}
		b.publish(events.DisconnectCommand{CommandID: c.id, AgentID: c.agent, Number: customer(c.agent)})
	}
	settled := events.PendingKey(972, "settled-pending")
	if _, err := pendingKV.Put(ctx, settled, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := pendingKV.Delete(ctx, settled); err != nil {
		t.Fatal(err)
	}

	// The first deliveries "fail": taken and Nak'ed, as dispose does.
	cons, err := b.js.Consumer(ctx, events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	naked := 0
	for m := range batch.Messages() {
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
		naked++
	}
	if naked != 2 {
		t.Fatalf("fetched %d commands, want 2", naked)
	}

	b.startWorker(nil)
	res := b.waitResults(2, 10*time.Second)
	for _, id := range []string{"lost-pending", "settled-pending"} {
		if r := res[id]; len(r) != 1 || r[0].Status != events.StatusAccepted {
			t.Fatalf("%s: results = %+v, want the stored accepted result", id, r)
		}
	}
	if n := len(b.sim.Disconnects()); n != 0 {
		t.Fatalf("%d requests reached the gateway, want none (replays)", n)
	}
	testenv.WaitFor(t, 10*time.Second, "both redeliveries acknowledged", func() bool { return consumerIdle(t, b) })

	e, err := pendingKV.Get(ctx, events.PendingKey(971, "lost-pending"))
	if err != nil {
		t.Fatalf("missing pending record not restored: %v", err)
	}
	var p events.Pending
	if err := json.Unmarshal(e.Value(), &p); err != nil || p.CommandID != "lost-pending" || p.Number != customer(971) ||
		!p.AcceptedAt.Equal(now) || !p.Deadline.After(p.AcceptedAt) {
		t.Fatalf("restored pending = %+v (%v)", p, err)
	}
	if _, err := pendingKV.Get(ctx, settled); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("settled pending record: err = %v, want it to stay deleted", err)
	}
}
