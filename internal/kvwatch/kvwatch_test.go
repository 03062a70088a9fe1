package kvwatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

func TestFollowFeedsInitialValuesThenChanges(t *testing.T) {
	_, js := testenv.Connect(t, testenv.JetStream(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kvwatch_test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"m.a", "m.b", "other"} {
		if _, err := kv.PutString(ctx, k, "1"); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu    sync.Mutex
		view  = map[string]string{} // key -> value, "" once deleted
		ready = make(chan struct{}, 4)
	)
	has := func(want map[string]string) bool {
		mu.Lock()
		defer mu.Unlock()
		if len(view) != len(want) {
			return false
		}
		for k, v := range want {
			if got, ok := view[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(fctx, kv, "m.>", View{
			Apply: func(e jetstream.KeyValueEntry) {
				mu.Lock()
				defer mu.Unlock()
				view[e.Key()] = string(e.Value())
				if e.Operation() != jetstream.KeyValuePut {
					view[e.Key()] = ""
				}
			},
			Ready: func() { ready <- struct{}{} },
		})
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("Ready not called after the initial values")
	}
	if !has(map[string]string{"m.a": "1", "m.b": "1"}) {
		t.Fatalf("view after the initial values = %v, want m.a and m.b only", view)
	}
	if _, err := kv.PutString(ctx, "m.a", "2"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "m.b"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"m.a": "2", "m.b": ""}
	testenv.WaitFor(t, 5*time.Second, "the change and the delete", func() bool { return has(want) })
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after ctx ended")
	}
}
