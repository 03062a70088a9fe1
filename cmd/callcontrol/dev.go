package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// runDev starts an embedded NATS server with JetStream, the gateway
// simulator with signed-in demo agents on live calls, a worker and a
// poller, all in one process, and runs until interrupted.
func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("dev", stderr)
	var (
		natsListen, dataDir string
		agents              int
		sf                  simFlags
		lf                  logFlags
		wcfg                worker.Config
		pcfg                poller.Config
		hf                  healthFlags
		tf                  traceFlags
	)
	s.fs.StringVar(&natsListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server")
	s.fs.StringVar(&dataDir, "data-dir", filepath.Join(os.TempDir(), "callcontrol-dev"), "JetStream file store of the embedded server")
	s.fs.IntVar(&agents, "agents", 5, "demo agents 101, 102, ... signed in, each on a call with 5550<agent id>")
	sf.register(s, "127.0.0.1:0")
	lf.register(s, "console")
	hf.register(s)
	tf.register(s)
	workerFlags(s, &wcfg)
	pollerFlags(s, &pcfg)
	s.fs.DurationVar(&sf.cfg.NoPollSignOut, "sim-no-poll-signout", 2*time.Minute, "sign out agents not polled for this long (0 = never)")
	if err := s.parse(args); err != nil {
		return err
	}
	if err := s.positive(workerPositive...); err != nil {
		return err
	}
	if err := sf.validate(); err != nil {
		return err
	}
	if agents < 0 || agents > 1000 {
		return fmt.Errorf("--agents (CALLCONTROL_AGENTS): must be 0-1000, got %d", agents)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	obs, err := newObservability(devStreams, 2*gateway.DefaultPollTimeout)
	if err != nil {
		return err
	}
	wcfg.Logger, pcfg.Logger, pcfg.PollTimeout = log, log, gateway.DefaultPollTimeout
	wcfg.Metrics, pcfg.Metrics = obs.metrics, obs.metrics
	tp, stopTracing, err := tf.provider(stdout, "dev")
	if err != nil {
		return err
	}
	defer stopTracing()
	wcfg.TracerProvider, pcfg.TracerProvider = tp, tp
	if err := wcfg.Validate(); err != nil {
		return s.explain(err)
	}
	if err := pcfg.Validate(); err != nil {
		return s.explain(err)
	}

	ns, err := startNATS(natsListen, dataDir)
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nf := natsFlags{url: ns.ClientURL(), replicas: 1}
	nc, js, err := nf.connect("dev")
	if err != nil {
		return err
	}
	defer drain(nc, 5*time.Second)
	stopHealth, err := hf.startObserved(ctx, obs, nc, js)
	if err != nil {
		return err
	}
	defer stopHealth()
	topo := worker.Topology{Replicas: 1, PollLeaseTTL: pcfg.LeaseTTL}
	if err := provisionRole(ctx, js, topo, func(ctx context.Context) error { return worker.Provision(ctx, js, topo, wcfg) }); err != nil {
		return err
	}

	if sf.cfg.RedialAfter == 0 {
		sf.cfg.RedialAfter = 2 * time.Second // keep the demo calls coming
	}
	sim, err := sf.start()
	if err != nil {
		return err
	}
	// The worker and the poller each get their own connection pool: the
	// poller's long polls hold a connection per agent.
	gw, err := devGateway(sim, wcfg.Concurrency)
	if err != nil {
		return err
	}
	defer gw.Close()
	pgw, err := devGateway(sim, agents+8)
	if err != nil {
		return err
	}
	defer pgw.Close()

	// The simulator outlives the worker and the poller, so that they can
	// finish their in-flight requests when the process stops.
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.serve(simCtx) }()
	stopSimWait := sync.OnceValue(func() error { stopSim(); return <-simDone })
	defer stopSimWait()
	g, gctx := errgroup.WithContext(ctx)
	if err := seedAgents(gctx, js, gw, sim, agents); err != nil {
		return err
	}
	w, err := worker.New(wcfg, js, gw)
	if err != nil {
		return err
	}
	p, err := poller.New(pcfg, js, pgw)
	if err != nil {
		return err
	}
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	fmt.Fprintf(stdout, "callcontrol dev ready: NATS %s, gateway simulator %s, agents 101-%d\n"+
		"try: go run ./cmd/callcontrol disconnect --agent 101 --number 5550101 --wait\n", ns.ClientURL(), sim.url, 100+agents)
	return errors.Join(g.Wait(), stopSimWait())
}

// startNATS runs an embedded nats-server with JetStream on listen.
func startNATS(listen, dataDir string) (*server.Server, error) {
	host, portS, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen (CALLCONTROL_NATS_LISTEN): %w", err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen (CALLCONTROL_NATS_LISTEN): port: %w", err)
	}
	if port == 0 {
		port = -1 // nats-server's "random port"
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "callcontrol-dev", Host: host, Port: port, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: dataDir, JetStreamMaxStore: 1 << 30, JetStreamMaxMemory: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready on %s (is the port in use? set --nats-listen)", listen)
	}
	return ns, nil
}

// devGateway returns a gateway client that trusts the simulator's certificate.
func devGateway(sim *simServer, conns int) (*gateway.Client, error) {
	cfg := gateway.Config{BaseURL: sim.url, MaxConns: conns}
	if sim.certPE != nil {
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(sim.certPE)
	}
	return gateway.New(cfg)
}

// seedAgents signs the demo agents in through the gateway's HTTP API and
// registers their sessions, as `callcontrol signin` does, and puts each on
// a call.
func seedAgents(ctx context.Context, js jetstream.JetStream, gw *gateway.Client, sim *simServer, n int) error {
	for id := 101; id < 101+n; id++ {
		if err := signIn(ctx, js, gw, id, gateway.SignInRequest{}, sim.authMode); err != nil {
			return err
		}
		if _, err := sim.sim.StartCall(id, "5550"+strconv.Itoa(id)); err != nil {
			return fmt.Errorf("demo call for agent %d: %w", id, err)
		}
	}
	return nil
}
