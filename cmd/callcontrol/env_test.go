package main

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testJetStream starts an in-process nats-server with JetStream for one
// test, provisions every stream and bucket with wcfg, and returns its URL
// and a JetStream context on a connection closed at the end of the test.
func testJetStream(t *testing.T, wcfg worker.Config) (string, jetstream.JetStream) {
	t.Helper()
	url, _, js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := worker.Provision(ctx, js, worker.Topology{}, wcfg); err != nil {
		t.Fatal(err)
	}
	return url, js
}

// bareJetStream starts a nats-server with JetStream and nothing provisioned.
func bareJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	_, nc, js := startJetStream(t)
	return nc, js
}

// startJetStream starts an in-process nats-server with JetStream for one
// test and connects to it; both end with the test.
func startJetStream(t *testing.T) (string, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	url := testenv.JetStream(t)
	nc, js := testenv.Connect(t, url)
	return url, nc, js
}

// testGateway serves a simulator over HTTPS for one test and returns it,
// its URL and a PEM file of its certificate, for --gateway-ca.
func testGateway(t *testing.T, cfg gatewaysim.Config) (*gatewaysim.Sim, string, string) {
	t.Helper()
	sim := gatewaysim.New(cfg)
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	ca := filepath.Join(t.TempDir(), "gateway-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, srv.URL, ca
}
