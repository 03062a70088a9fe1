package worker

import (
	"context"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
)

// The ledger's takeover fence and the "write the pending record unless it
// ever existed" path on replicated (R3) buckets, as in production: a
// conflict is a conflict there too, not a NATS failure. (nats.go documents
// that replicated streams may report a compare-and-set conflict as 10164
// instead of 10071; the code checks ErrKeyRevisionMismatch, which covers
// both. The nats-server used here answers 10071 in both cases.)
func TestConflictsOnReplicatedBuckets(t *testing.T) {
	_, js := testenv.Connect(t, testenv.JetStreamCluster(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig()
	testenv.Provision(t, js, topology.Config{Replicas: 3, DuplicateWindow: time.Minute, Workers: cfg.Topology()})
	w := boundWorker(t, cfg, js, nil)

	_, revA, err := w.ledger.Start(ctx, "r3", "worker-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.ledger.Start(ctx, "r3", "worker-b", ""); err != nil {
		t.Fatalf("takeover on R3: %v", err)
	}
	if err := w.ledger.DoneAt(ctx, &events.Result{CommandID: "r3", Status: events.StatusAccepted}, revA, 0); err == nil {
		t.Fatal("stored over a record taken over")
	}

	res := &events.Result{CommandID: "r3", AgentID: 996, Number: customer(996), Status: events.StatusAccepted, CompletedAt: time.Now()}
	if err := w.expectRelease(ctx, res, true); err != nil {
		t.Fatalf("first pending write: %v", err)
	}
	if err := w.expectRelease(ctx, res, true); err != nil {
		t.Fatalf("pending write over an existing record, R3: %v (want it skipped)", err)
	}
}
