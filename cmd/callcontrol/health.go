package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// healthFlags is the optional health and metrics endpoint of the
// long-running roles (see package health).
type healthFlags struct {
	listen string
	pprof  bool
}

func (h *healthFlags) register(s *settings) {
	defer s.group(groupOutput)()
	s.fs.StringVar(&h.listen, "health-listen", "", `address of the health and metrics endpoint (GET /livez or /healthz, /readyz, /metrics), e.g. ":8080"; "" = off`)
	s.fs.BoolVar(&h.pprof, "pprof", false, "also serve the Go profiler (/debug/pprof/) on --health-listen; it exposes internals: keep the port private")
}

// The streams each role needs, for /readyz.
var (
	workerStreams = []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter}
	pollerStreams = []string{events.StreamEvents}
	devStreams    = []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter, events.StreamEvents}
)

// config is the health.Config of the flags; serving errors are printed
// on stderr.
func (h *healthFlags) config() health.Config {
	return health.Config{Listen: h.listen, Pprof: h.pprof, OnError: func(err error) {
		fmt.Fprintln(stderr, "callcontrol: health endpoint:", err)
	}}
}

// start serves the health endpoint (see health.Start); a listen error
// names --health-listen.
func (h *healthFlags) start(ctx context.Context, r health.Checker, g prometheus.Gatherer) (stop func(), err error) {
	stop, err = health.Start(ctx, h.config(), r, g)
	return stop, listenError(err)
}

// startObserved binds obs to the process's NATS connection and serves
// the health endpoint (see health.Observability.StartBound).
func (h *healthFlags) startObserved(ctx context.Context, obs *health.Observability, nc *nats.Conn, js jetstream.JetStream) (stop func(), err error) {
	stop, err = obs.StartBound(ctx, h.config(), nc, js)
	return stop, listenError(err)
}

// listenError names --health-listen in a listen error.
func listenError(err error) error {
	var le *health.ListenError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", flagRef("health-listen"), le.Err)
	}
	return err
}
