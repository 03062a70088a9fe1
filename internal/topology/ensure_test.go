package topology_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A role that starts before its NATS server does (a pod scheduled before
// the cluster is up) provisions once the server answers: Ensure keeps
// trying while JetStream does not answer, and adds the shared part.
func TestEnsureWaitsForJetStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	nc, err := nats.Connect("nats://"+addr, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- topology.Ensure(context.Background(), js, topology.Config{}, topology.Workers) }()
	time.Sleep(500 * time.Millisecond) // the role is up first: nothing answers yet
	select {
	case err := <-done:
		t.Fatalf("Ensure returned %v before any server was up", err)
	default:
	}
	srv, err := natsembed.Start(natsembed.Config{Listen: addr, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Ensure after the server came up: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("Ensure did not return 45 s after the server came up")
	}
	if _, err := js.Stream(context.Background(), events.StreamCommands); err != nil {
		t.Errorf("the shared part: stream %s: %v", events.StreamCommands, err)
	}
	if _, err := js.KeyValue(context.Background(), events.BucketLedger); err != nil {
		t.Errorf("the workers' part: bucket %s: %v", events.BucketLedger, err)
	}
}
