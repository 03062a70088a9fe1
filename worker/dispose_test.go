package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/ledger"
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
		rec, _ := json.Marshal(ledger.Record{State: ledger.StateDone, Result: &res})
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

// The last allowed delivery of a command that would be retried ends it,
// but the ledger decides how (the rules docs/model/ledger.pml checks): an
// outcome another delivery stored is replayed, not overwritten; a copy in
// flight (started, agent held elsewhere) is waited for; otherwise
// "failed: max_deliveries" is stored by compare-and-set over what was read.
func TestLastDeliveryLetsTheLedgerDecide(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	ctx := context.Background()
	w := boundWorker(t, b.cfg, b.js, b.gw)
	ledgerKV, _ := b.js.KeyValue(ctx, events.BucketLedger)
	leases, _ := b.js.KeyValue(ctx, events.BucketLeases)
	cons, err := b.js.Consumer(ctx, events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	delivery := func(id string, agent int) *job {
		t.Helper()
		b.publish(events.DisconnectCommand{CommandID: id, AgentID: agent, Number: customer(agent)})
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			j := &job{msg: m}
			if j.meta, err = m.Metadata(); err != nil {
				t.Fatal(err)
			}
			if j.cmd, err = events.DecodeDisconnect(m.Data()); err != nil {
				t.Fatal(err)
			}
			j.valid, j.deadline = true, time.Now().Add(time.Minute)
			_ = m.Term() // only the decision is tested; the worker does not run
			return j
		}
		t.Fatal("no delivery")
		return nil
	}
	retry := outcome{retry: time.Second, err: errors.New("gateway unreachable")}
	stored := events.Result{CommandID: "stored-elsewhere", AgentID: 991, Number: customer(991), Status: events.StatusAccepted, RetCode: "0"}

	// Another delivery stored the outcome: replayed as it is.
	rec, _ := json.Marshal(ledger.Record{State: ledger.StateDone, Result: &stored})
	if _, err := ledgerKV.Put(ctx, "stored-elsewhere", rec); err != nil {
		t.Fatal(err)
	}
	if out := w.lastDelivery(ctx, delivery("stored-elsewhere", 991), retry); out.res == nil || out.store ||
		out.res.Status != events.StatusAccepted {
		t.Fatalf("done elsewhere: outcome %+v, want the stored accepted result replayed, not stored again", out)
	}
	// A copy in flight: wait for it.
	started, _ := json.Marshal(ledger.Record{State: ledger.StateStarted, Owner: "other-worker"})
	if _, err := ledgerKV.Create(ctx, "in-flight-elsewhere", started); err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Create(ctx, "agent.992", []byte("other-worker")); err != nil {
		t.Fatal(err)
	}
	if out := w.lastDelivery(ctx, delivery("in-flight-elsewhere", 992), retry); out.res != nil || !errors.Is(out.err, errStartedElsewhere) {
		t.Fatalf("in flight elsewhere: outcome %+v, want a Nak that waits for it", out)
	}
	// Started, agent free: failed, over exactly the record read.
	e, err := ledgerKV.Create(ctx, "abandoned-start", started)
	if err != nil {
		t.Fatal(err)
	}
	if out := w.lastDelivery(ctx, delivery("abandoned-start", 993), retry); out.res == nil || out.res.Status != events.StatusFailed ||
		!strings.HasPrefix(out.res.Reason, events.ReasonMaxDeliveries) || !out.store || out.rev != e {
		t.Fatalf("abandoned start: outcome %+v, want failed max_deliveries stored by CAS over revision %d", out, e)
	}
	// Nothing recorded: failed, created only if still absent.
	if out := w.lastDelivery(ctx, delivery("never-started", 994), retry); out.res == nil || out.res.Status != events.StatusFailed ||
		!out.store || out.rev != 0 {
		t.Fatalf("never started: outcome %+v, want failed max_deliveries created if absent", out)
	}
}

// A delivery that lost the agent (its lease renewals failed) reaches its
// last delivery after another delivery took its "started" record over:
// "failed" must be stored over its own revision, so that the store fails,
// not over its successor's record while that one may still be sending.
func TestLastDeliveryAfterTakeoverStoresOverItsOwnRevision(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	ctx := context.Background()
	w := boundWorker(t, b.cfg, b.js, b.gw)
	_, own, err := w.ledger.Start(ctx, "taken-over", "this-worker", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.ledger.Start(ctx, "taken-over", "successor", ""); err != nil { // the takeover
		t.Fatal(err)
	}
	j := &job{cmd: events.DisconnectCommand{CommandID: "taken-over", AgentID: 995, Number: customer(995)}, valid: true,
		deadline: time.Now().Add(time.Minute), rev: own}
	out := w.lastDelivery(ctx, j, outcome{retry: time.Second, err: errLeaseLost})
	if out.res == nil || out.res.Status != events.StatusFailed || !out.store || out.rev != own {
		t.Fatalf("outcome %+v, want failed stored over this delivery's revision %d", out, own)
	}
	if err := w.ledger.DoneAt(ctx, out.res, out.rev, 0); err == nil {
		t.Fatal("stored over the successor's record")
	}
}
