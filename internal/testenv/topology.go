package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// Provision provisions every part of the topology under cfg through js
// (as callcontrol dev does), failing t if it cannot within 30 s.
func Provision(t testing.TB, js jetstream.JetStream, cfg topology.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topology.Provision(ctx, js, cfg, topology.All); err != nil {
		t.Fatal(err)
	}
}

// Provisioned starts a nats-server with JetStream for the rest of t (see
// [JetStream]) and provisions every part of the topology under cfg. It
// returns the server's URL and a JetStream context on a connection closed
// when t ends.
func Provisioned(t testing.TB, cfg topology.Config) (string, jetstream.JetStream) {
	t.Helper()
	url := JetStream(t)
	_, js := Connect(t, url)
	Provision(t, js, cfg)
	return url, js
}
