package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchEnv is one scenario's world: an embedded NATS server with fresh
// storage, a gateway simulator over HTTPS in this process, and the worker
// and poller as child processes of this binary, so that their CPU, memory,
// goroutines and connections are their own.
type benchEnv struct {
	cfg    Config
	dir    string
	ns     *natsembed.Server
	url    string // of the NATS server
	nc     *nats.Conn
	js     jetstream.JetStream
	ajs    jetstream.JetStream // for the commands: room for every async publish in flight
	sim    *Gateway
	auth   int // the simulator's AUTHMODE
	caFile string
	gw     *gateway.Client // for sign-ins and the bare HTTP baseline
	kids   []*child
}

// newBenchEnv starts NATS and a simulator with sim, and provisions the
// streams and buckets.
func newBenchEnv(ctx context.Context, cfg Config, sim gatewaysim.Config, conns int) (*benchEnv, error) {
	dir, err := os.MkdirTemp("", "callcontrol-bench-")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{cfg: cfg, dir: dir, auth: sim.AuthMode}
	if err := e.startNATS(ctx); err != nil {
		e.close()
		return nil, err
	}
	if err := e.startGateway(sim, conns); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// startNATS starts the server, connects and provisions.
func (e *benchEnv) startNATS(ctx context.Context) error {
	var err error
	if e.ns, err = e.cfg.StartNATS("127.0.0.1:0", filepath.Join(e.dir, "jetstream")); err != nil {
		return err
	}
	e.url = e.ns.ClientURL()
	if e.nc, e.js, err = e.cfg.Connect(e.url); err != nil {
		return err
	}
	if e.ajs, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(1<<16)); err != nil {
		return err
	}
	topo := topology.Config{Replicas: 1, Workers: worker.DefaultConfig().Topology(), Pollers: poller.DefaultConfig().Topology()}
	return topology.Provision(ctx, e.js, topo, topology.All)
}

// startGateway starts the simulator, writes its certificate for the
// children and opens the bench's own client with conns connections.
func (e *benchEnv) startGateway(cfg gatewaysim.Config, conns int) error {
	var err error
	if e.sim, err = e.cfg.StartGateway(cfg); err != nil {
		return err
	}
	e.caFile = filepath.Join(e.dir, "gateway-ca.pem")
	if err := os.WriteFile(e.caFile, e.sim.CertPEM, 0o600); err != nil {
		return err
	}
	e.gw, err = e.sim.client(conns)
	return err
}

// close stops the children, the simulator and NATS, and removes the storage.
func (e *benchEnv) close() {
	for _, k := range e.kids {
		k.stop()
	}
	if e.gw != nil {
		e.gw.Close()
	}
	if e.sim != nil {
		_ = e.sim.Stop()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
	}
	_ = os.RemoveAll(e.dir)
}

// call puts agent on a call with customer(agent) unless it is on one.
func (e *benchEnv) call(agent int) error {
	if _, err := e.sim.Sim.StartCall(agent, Customer(agent)); err != nil && !strings.Contains(err.Error(), "already") {
		return fmt.Errorf("call for agent %d: %w", agent, err)
	}
	return nil
}

// callAll puts each of agents on a call (see call).
func (e *benchEnv) callAll(agents []int) error {
	for _, a := range agents {
		if err := e.call(a); err != nil {
			return err
		}
	}
	return nil
}

func Customer(agent int) string { return "5550" + strconv.Itoa(agent) }

func agentRange(first, n int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = first + i
	}
	return a
}

// benchWait polls cond every 10 ms until it holds, ctx ends or d passes.
func benchWait(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: not after %s", what, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
