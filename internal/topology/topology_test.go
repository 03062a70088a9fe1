package topology_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
)

func provision(t *testing.T, js jetstream.JetStream, cfg topology.Config, parts topology.Part) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topology.Provision(ctx, js, cfg, parts); err != nil {
		t.Fatal(err)
	}
}

func bucketTTL(t *testing.T, js jetstream.JetStream, bucket string) time.Duration {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatalf("bucket %s: %v", bucket, err)
	}
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.TTL()
}

func consumerAckWait(t *testing.T, js jetstream.JetStream, stream, name string) time.Duration {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	return c.CachedInfo().Config.AckWait
}

// A worker and a poller starting at once on an empty server, with the same
// config, both succeed, and between them create everything.
func TestRolesStartingAtOnce(t *testing.T) {
	url := testenv.JetStream(t)
	cfg := topology.Config{DuplicateWindow: time.Minute}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, part := range []topology.Part{topology.Workers, topology.Pollers, topology.Workers, topology.Pollers} {
		_, js := testenv.Connect(t, url) // each role its own connection
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = topology.Provision(ctx, js, cfg, topology.Shared|part)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("role %d: %v", i, err)
		}
	}
	_, js := testenv.Connect(t, url)
	for _, b := range []string{events.BucketLedger, events.BucketSessions, events.BucketPending, events.BucketCalls, events.BucketLeases, events.BucketPollers} {
		bucketTTL(t, js, b)
	}
	for _, s := range []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter, events.StreamEvents} {
		info, err := js.Stream(context.Background(), s)
		if err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
		if got := info.CachedInfo().Config.Duplicates; got != time.Minute {
			t.Errorf("stream %s: duplicate window %v, want 1m", s, got)
		}
	}
}

// A role provisions its own part and the shared one only: a poller
// starting after a worker with other settings leaves the worker's
// consumers and leases as they were, and the other way round.
func TestRoleLeavesOthersSettings(t *testing.T) {
	_, js := testenv.Connect(t, testenv.JetStream(t))
	workers := topology.Config{Workers: topology.WorkersConfig{AckWait: 7 * time.Second, MaxDeliver: 3, LeaseTTL: 4 * time.Second}}
	pollers := topology.Config{Pollers: topology.PollersConfig{LeaseTTL: 12 * time.Second}}
	provision(t, js, workers, topology.Shared|topology.Workers)
	if _, err := js.KeyValue(context.Background(), events.BucketPollers); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("the workers' part created the pollers' bucket (err %v)", err)
	}
	provision(t, js, pollers, topology.Shared|topology.Pollers)
	if got := consumerAckWait(t, js, events.StreamCommands, events.ConsumerWorkers); got != 7*time.Second {
		t.Errorf("after the pollers' part: the workers' AckWait is %v, want 7s", got)
	}
	if got := bucketTTL(t, js, events.BucketLeases); got != 4*time.Second {
		t.Errorf("after the pollers' part: the workers' lease TTL is %v, want 4s", got)
	}
	provision(t, js, workers, topology.Shared|topology.Workers)
	if got := bucketTTL(t, js, events.BucketPollers); got != 12*time.Second {
		t.Errorf("after the workers' part: the pollers' lease TTL is %v, want 12s", got)
	}
}

// The zero Config is the defaults; what Provision makes follows them.
func TestDefaults(t *testing.T) {
	_, js := testenv.Connect(t, testenv.JetStream(t))
	provision(t, js, topology.Config{}, topology.All)
	for bucket, want := range map[string]time.Duration{
		events.BucketLedger: topology.DefaultLedgerTTL, events.BucketPending: topology.DefaultPendingTTL,
		events.BucketCalls: topology.DefaultCallsTTL, events.BucketLeases: topology.DefaultWorkerLeaseTTL,
		events.BucketPollers: topology.DefaultPollLeaseTTL, events.BucketSessions: 0,
		topology.BucketIdempotency: topology.DefaultIdempotencyTTL,
	} {
		if got := bucketTTL(t, js, bucket); got != want {
			t.Errorf("bucket %s: TTL %v, want %v", bucket, got, want)
		}
	}
	c, err := js.Consumer(context.Background(), events.StreamCommands, events.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.CachedInfo().Config; cc.AckWait != topology.DefaultAckWait || cc.MaxDeliver != topology.DefaultMaxDeliver ||
		cc.MaxAckPending != topology.DefaultMaxAckPending || cc.MaxWaiting != topology.DefaultMaxWaiting {
		t.Errorf("workers' consumer: %+v", cc)
	}
	if got := consumerAckWait(t, js, events.StreamDeadLetter, events.ConsumerExhausted); got != topology.DefaultAckWait {
		t.Errorf("exhausted consumer: AckWait %v", got)
	}
}

// A failure names what could not be made and wraps JetStream's error.
func TestErrorIsTyped(t *testing.T) {
	_, js := testenv.Connect(t, testenv.JetStream(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := topology.Provision(ctx, js, topology.Config{}, topology.Shared)
	var perr *topology.Error
	if !errors.As(err, &perr) || perr.Kind != topology.KindStream || perr.Name != events.StreamCommands {
		t.Fatalf("Provision with a cancelled ctx = %v, want a *topology.Error about stream %s", err, events.StreamCommands)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v does not wrap context.Canceled", err)
	}
}
