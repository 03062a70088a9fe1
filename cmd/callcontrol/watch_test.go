package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
)

// watch --all prints a stored result with the time JetStream stored it,
// not the time it prints the line (which, for a message stored before
// watch started, is later: the test waits for the clock to pass it).
func TestWatchPrintsStoredTime(t *testing.T) {
	url, js := testJetStream(t, worker.Config{})
	ctx := context.Background()
	data, err := json.Marshal(events.Result{CommandID: "watch-1", AgentID: 101, Number: "5550101", Status: events.StatusAccepted})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, events.ResultSubject(events.StatusAccepted), data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, events.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the clock to pass the stored time", func() bool { return time.Since(stored.Time) > 20*time.Millisecond })

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var out testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(wctx, []string{"watch", "--all", "--nats-url", url}, &out) }()
	testenv.WaitFor(t, 10*time.Second, "watch to print the result", func() bool { return strings.Contains(out.String(), "command=watch-1") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	if want := stored.Time.Local().Format(watchTime) + " accepted "; !strings.HasPrefix(line, want) {
		t.Fatalf("watch printed %q, want it to start with %q", line, want)
	}
}
