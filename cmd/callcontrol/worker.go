package main

import (
	"cmp"
	"context"
	"io"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// runWorker runs one worker replica against a NATS server and a gateway.
func runWorker(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("worker", stdout)
	var (
		nf   natsFlags
		lf   logFlags
		wcfg worker.Config
		gcfg gateway.Config
		hf   healthFlags
		tf   traceFlags
		gc   gcFlag
	)
	nf.register(s, defaultNATSURL)
	nf.registerRole(s)
	lf.register(s, "json")
	hf.register(s)
	tf.register(s)
	gc.register(s, workerGCPercent)
	workerFlags(s, &wcfg)
	gatewayFlags(s, &gcfg)
	if err := s.parse(args); err != nil {
		return err
	}
	if err := s.positive(workerPositive...); err != nil {
		return err
	}
	if err := gc.apply(); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	obs, err := health.NewObservability(workerStreams, 2*gateway.DefaultPollTimeout)
	if err != nil {
		return err
	}
	nf.log = &log // WARN lines about risky settings, in the role's log format
	wcfg.Logger, wcfg.Metrics = log, obs.Metrics
	gcfg.MaxConns = wcfg.Concurrency
	if err := wcfg.Validate(); err != nil {
		return s.explain(err)
	}
	if err := gcfg.Validate(); err != nil {
		return s.explain(err)
	}
	if err := checkShutdownTimeout(wcfg, gcfg.RequestTimeout); err != nil {
		return err
	}
	if lease := cmp.Or(wcfg.LeaseTTL, worker.DefaultConfig().LeaseTTL); gcfg.RequestTimeout*8/5 > lease {
		log.Warn().Dur("gateway_timeout", gcfg.RequestTimeout).Dur("lease_ttl", lease).
			Msg("--gateway-timeout above 5/8 of --lease-ttl: a request that slow is cut off where the agent lease could lapse")
	}
	tp, stopTracing, err := tf.provider(stdout, "worker", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	wcfg.TracerProvider = tp
	topo := topology.Config{Workers: wcfg.Topology()}
	return serveRole(ctx, "worker", s, &nf, &hf, obs, gcfg, topo, topology.Workers, func(ctx context.Context, js jetstream.JetStream, gw *gateway.Client) error {
		w, err := worker.New(wcfg, js, gw)
		if err != nil {
			return s.explain(err)
		}
		return w.Run(ctx)
	})
}
