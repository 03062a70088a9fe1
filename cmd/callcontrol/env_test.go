package main

import (
	"testing"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testJetStream starts an in-process nats-server with JetStream for one
// test, provisions every stream and bucket with wcfg, and returns its URL
// and a JetStream context on a connection closed at the end of the test.
func testJetStream(t *testing.T, wcfg worker.Config) (string, jetstream.JetStream) {
	t.Helper()
	return testenv.Provisioned(t, topology.Config{Workers: wcfg.Topology()})
}

// bareJetStream starts a nats-server with JetStream and nothing provisioned.
func bareJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return testenv.Connect(t, testenv.JetStream(t))
}

// testGateway serves a simulator over HTTPS for one test and returns it,
// its URL and a PEM file of its certificate, for --gateway-ca.
func testGateway(t *testing.T, cfg gatewaysim.Config) (*gatewaysim.Sim, string, string) {
	t.Helper()
	g := testenv.StartGateway(t, cfg)
	return g.Sim, g.URL, g.CAFile
}
