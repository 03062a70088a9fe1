package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/natsconn"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// devSettings is what `callcontrol dev` runs with, read and checked.
type devSettings struct {
	natsListen, dataDir string
	fresh               bool
	agents              int
	sf                  simFlags
	wcfg                worker.Config
	pcfg                poller.Config
	hf                  healthFlags
	tf                  traceFlags
	lc                  api.ListenConfig
	explain             func(error) error // names the flags of config errors
	obs                 *health.Observability
	// serveAPI runs the HTTP API beside the worker and the poller.
	serveAPI func(context.Context) error
	closeAPI func()
}

// runDev starts an embedded NATS server with JetStream, the gateway
// simulator with signed-in demo agents on live calls, a worker and a
// poller, all in one process, and runs until interrupted.
func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	d, err := devParse(args, stdout)
	if err != nil {
		return err
	}
	tp, stopTracing, err := d.tf.provider(stdout, "dev", d.wcfg.Logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	d.wcfg.TracerProvider, d.pcfg.TracerProvider = tp, tp
	return d.run(ctx, stdout)
}

// devParse reads and checks the flags of `callcontrol dev` (-h prints
// the usage text on stdout).
func devParse(args []string, stdout io.Writer) (*devSettings, error) {
	s := newSettings("dev", stdout)
	d := &devSettings{}
	var lf logFlags
	connection := s.group(groupConnection)
	s.fs.StringVar(&d.natsListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server")
	connection()
	s.fs.StringVar(&d.dataDir, "data-dir", filepath.Join(os.TempDir(), "callcontrol-dev"), "JetStream file store of the embedded server, locked by one process at a time")
	s.fs.BoolVar(&d.fresh, "fresh", false, "start from an empty --data-dir: remove the store of earlier runs (their commands, results, sessions)")
	s.fs.IntVar(&d.agents, "agents", 5, "demo agents 101, 102, ... signed in, each on a call with 5550<agent id>")
	d.sf.register(s, "127.0.0.1:0")
	lf.register(s, "console")
	d.hf.register(s)
	d.tf.register(s)
	apiListenFlags(s, &d.lc, devAPIListen, true)
	workerFlags(s, &d.wcfg)
	pollerFlags(s, &d.pcfg)
	s.fs.DurationVar(&d.sf.cfg.NoPollSignOut, "sim-no-poll-signout", 2*time.Minute, "sign out agents not polled for this long (0 = never)")
	if err := s.parse(args); err != nil {
		return nil, err
	}
	if err := s.positive(workerPositive...); err != nil {
		return nil, err
	}
	if err := d.sf.validate(); err != nil {
		return nil, err
	}
	if err := d.lc.Validate(); err != nil {
		return nil, s.explain(err)
	}
	d.explain = s.explain
	if d.agents < 0 || d.agents > 1000 {
		return nil, fmt.Errorf("--agents (CALLCONTROL_AGENTS): must be 0-1000, got %d", d.agents)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return nil, err
	}
	if d.obs, err = health.NewObservability(devStreams, 2*gateway.DefaultPollTimeout); err != nil {
		return nil, err
	}
	d.wcfg.Logger, d.pcfg.Logger, d.pcfg.PollTimeout = log, log, gateway.DefaultPollTimeout
	d.wcfg.Metrics, d.pcfg.Metrics = d.obs.Metrics, d.obs.Metrics
	if err := d.wcfg.Validate(); err != nil {
		return nil, s.explain(err)
	}
	if err := d.pcfg.Validate(); err != nil {
		return nil, s.explain(err)
	}
	return d, nil
}

// run starts NATS, provisions, starts the simulator and seeds the agents,
// then runs the worker and the poller until ctx ends.
func (d *devSettings) run(ctx context.Context, stdout io.Writer) error {
	ns, err := startNATS(d.natsListen, d.dataDir, d.fresh)
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nf := natsFlags{cfg: natsconn.Config{URL: ns.ClientURL(), ConnectTimeout: 10 * time.Second}, replicas: 1, log: &d.wcfg.Logger}
	nc, js, err := nf.connectWait(ctx, "dev")
	if err != nil {
		return err
	}
	defer natsconn.Drain(nc, 5*time.Second)
	stopHealth, err := d.hf.startObserved(ctx, d.obs, nc, js)
	if err != nil {
		return err
	}
	defer stopHealth()
	topo := topology.Config{Replicas: 1, Workers: d.wcfg.Topology(), Pollers: d.pcfg.Topology()}
	if err := topology.Ensure(ctx, js, topo, topology.All); err != nil {
		return err
	}
	storeLine, err := d.describeStore(ctx, js)
	if err != nil {
		return err
	}
	apiLine, serveAPI, err := d.devAPI(js)
	if err != nil {
		return err
	}
	d.serveAPI = serveAPI
	defer d.closeAPI()
	return d.runRoles(ctx, js, func(simURL string) {
		fmt.Fprintf(stdout, "callcontrol dev ready: NATS %s, gateway simulator %s, %s\n%s\n%s\n%s",
			ns.ClientURL(), simURL, demoAgents(d.agents), storeLine, apiLine, devCommands(ns.ClientURL(), d.agents))
	})
}

// runRoles starts the simulator, seeds the demo agents and runs the worker
// and the poller until ctx ends; ready prints the banner once they run.
func (d *devSettings) runRoles(ctx context.Context, js jetstream.JetStream, ready func(simURL string)) error {
	if d.sf.cfg.RedialAfter == 0 {
		d.sf.cfg.RedialAfter = 2 * time.Second // keep the demo calls coming
	}
	sim, err := d.sf.start()
	if err != nil {
		return err
	}
	// The worker and the poller each get their own connection pool: the
	// poller's long polls hold a connection per agent.
	gw, err := devGateway(sim, d.wcfg.Concurrency)
	if err != nil {
		return err
	}
	defer gw.Close()
	pgw, err := devGateway(sim, d.agents+8)
	if err != nil {
		return err
	}
	defer pgw.Close()

	// The simulator outlives the worker and the poller, so that they can
	// finish their in-flight requests when the process stops.
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	stopSimWait := sync.OnceValue(func() error { stopSim(); return <-simDone })
	defer stopSimWait()
	g, gctx := errgroup.WithContext(ctx)
	if err := seedAgents(gctx, js, gw, sim, d.agents); err != nil {
		return err
	}
	w, err := worker.New(d.wcfg, js, gw)
	if err != nil {
		return err
	}
	p, err := poller.New(d.pcfg, js, pgw)
	if err != nil {
		return err
	}
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	if d.serveAPI != nil {
		g.Go(func() error { return d.serveAPI(gctx) })
	}
	ready(sim.URL())
	return errors.Join(g.Wait(), stopSimWait())
}

// demoAgents names the demo agents for the banner.
func demoAgents(n int) string {
	if n == 0 {
		return "no demo agents"
	}
	return fmt.Sprintf("agents 101-%d", 100+n)
}

// devCommands is the banner's list of commands to run beside dev, exactly
// as they must be typed: with --nats-url when the embedded server is not
// where the commands look by default (--nats-listen changed).
func devCommands(natsURL string, agents int) string {
	conn := ""
	if natsURL != defaultNATSURL {
		conn = " --nats-url " + natsURL
	}
	var b strings.Builder
	b.WriteString("run beside it:\n")
	if agents > 0 {
		fmt.Fprintf(&b, "  go run ./cmd/callcontrol disconnect%s --agent 101 --number 5550101 --wait\n", conn)
	}
	fmt.Fprintf(&b, "  go run ./cmd/callcontrol watch%s\n", conn)
	fmt.Fprintf(&b, "  go run ./cmd/callcontrol agents%s\n", conn)
	return b.String()
}

// describeStore returns the banner line that names the data directory and
// what earlier runs left in it (the commands in CALLCONTROL_COMMANDS), and
// logs it when the store is not empty: a reused store replays nothing,
// but its old results, sessions and dead letters are still there.
func (d *devSettings) describeStore(ctx context.Context, js jetstream.JetStream) (string, error) {
	st, err := js.Stream(ctx, events.StreamCommands)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", events.StreamCommands, err)
	}
	n := st.CachedInfo().State.Msgs
	line := fmt.Sprintf("data dir %s: %d stored commands in %s", d.dataDir, n, events.StreamCommands)
	if n > 0 {
		line += " from earlier runs (--fresh starts from an empty one)"
		d.wcfg.Logger.Info().Str("data_dir", d.dataDir).Uint64("stored_commands", n).Str("stream", events.StreamCommands).
			Msg("dev reuses a data dir with stored commands; --fresh starts from an empty one")
	}
	return line, nil
}

// devGateway returns a gateway client that trusts the simulator's certificate.
func devGateway(sim *gatewaysim.Server, conns int) (*gateway.Client, error) {
	return gateway.New(gateway.Config{BaseURL: sim.URL(), MaxConns: conns, RootCAs: sim.RootCAs()})
}

// seedAgents signs the demo agents in through the gateway's HTTP API and
// registers their sessions, as `callcontrol signin` does, and puts each on
// a call.
func seedAgents(ctx context.Context, js jetstream.JetStream, gw *gateway.Client, sim *gatewaysim.Server, n int) error {
	for id := 101; id < 101+n; id++ {
		// A fresh simulator: nobody is signed in elsewhere, so no --force.
		if err := newAdmin(js).SignIn(ctx, gw, id, gateway.SignInRequest{}, sim.Sim().AuthMode(), false); err != nil {
			return err
		}
		if _, err := sim.Sim().StartCall(id, "5550"+strconv.Itoa(id)); err != nil {
			return fmt.Errorf("demo call for agent %d: %w", id, err)
		}
	}
	return nil
}
