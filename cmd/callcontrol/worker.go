package main

import (
	"context"
	"io"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/worker"
)

// runWorker runs one worker replica against a NATS server and a gateway.
func runWorker(ctx context.Context, args []string, _ io.Writer) error {
	s := newSettings("worker", stderr)
	var (
		nf   natsFlags
		lf   logFlags
		wcfg worker.Config
		gcfg gateway.Config
		hf   healthFlags
	)
	nf.register(s, "nats://127.0.0.1:4222")
	lf.register(s, "json")
	hf.register(s)
	workerFlags(s, &wcfg)
	gatewayFlags(s, &gcfg)
	if err := s.parse(args); err != nil {
		return err
	}
	if err := s.positive(workerPositive...); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	wcfg.Logger = log
	gcfg.MaxConns = wcfg.Concurrency
	if err := wcfg.Validate(); err != nil {
		return s.explain(err)
	}
	if err := gcfg.Validate(); err != nil {
		return s.explain(err)
	}
	gw, err := gateway.New(gcfg)
	if err != nil {
		return s.explain(err)
	}
	defer gw.Close()
	nc, js, err := nf.connect("worker")
	if err != nil {
		return err
	}
	defer drain(nc, 5*time.Second)
	stopHealth, err := hf.start(ctx, nc)
	if err != nil {
		return err
	}
	defer stopHealth()
	topo := worker.Topology{Replicas: nf.replicas}
	err = provisionRole(ctx, js, topo, func(ctx context.Context) error { return worker.ProvisionWorker(ctx, js, topo, wcfg) })
	if err != nil {
		return err
	}
	w, err := worker.New(wcfg, js, gw)
	if err != nil {
		return s.explain(err)
	}
	return w.Run(ctx)
}
