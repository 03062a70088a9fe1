package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/bench"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// runBenchFloor is the floor's child process (hidden: started by bench):
// the least any worker does for a command (see bench.RunFloor).
func runBenchFloor(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("bench-floor", stdout)
	var (
		nf                natsFlags
		lf                logFlags
		gcfg              gateway.Config
		hf                healthFlags
		gc                gcFlag
		stream, guidsFile string
		withLedger        bool
		conc              int
	)
	nf.register(s, defaultNATSURL)
	lf.register(s, "json") // accepted as by every child; the floor logs nothing, its error ends it
	hf.register(s)
	gc.register(s, workerGCPercent)
	gatewayFlags(s, &gcfg)
	s.fs.StringVar(&stream, "stream", "", "stream with a durable consumer \"bench\" to execute")
	s.fs.StringVar(&guidsFile, "guids", "", "JSON file of each agent's GUID")
	s.fs.BoolVar(&withLedger, "ledger", false, "create a ledger record before each POST")
	s.fs.IntVar(&conc, "concurrency", 64, "commands in flight")
	if err := s.parse(args); err != nil {
		return err
	}
	if err := gc.apply(); err != nil {
		return err
	}
	b, err := os.ReadFile(guidsFile)
	if err != nil {
		return err
	}
	guids, err := bench.DecodeGUIDs(b)
	if err != nil {
		return fmt.Errorf("--guids: %w", err)
	}
	obs, err := health.NewObservability(nil, 0)
	if err != nil {
		return err
	}
	gcfg.MaxConns = conc
	return serveRole(ctx, "bench-floor", s, &nf, &hf, obs, gcfg, topology.Config{}, 0, func(ctx context.Context, js jetstream.JetStream, gw *gateway.Client) error {
		return bench.RunFloor(ctx, js, gw, bench.FloorConfig{Stream: stream, GUIDs: guids, Ledger: withLedger, Concurrency: conc})
	})
}
