package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchEnv is one scenario's world: an embedded NATS server with fresh
// storage, a gateway simulator over HTTPS in this process, and the worker
// and poller as child processes of this binary, so that their CPU, memory,
// goroutines and connections are their own.
type benchEnv struct {
	dir    string
	ns     *server.Server
	nf     natsFlags
	nc     *nats.Conn
	js     jetstream.JetStream
	ajs    jetstream.JetStream // for the commands: room for every async publish in flight
	sim    *simServer
	caFile string
	gw     *gateway.Client // for sign-ins and the bare HTTP baseline
	stop   func() error    // stops the simulator
	kids   []*child
}

// newBenchEnv starts NATS and a simulator with cfg, and provisions the
// streams and buckets.
func newBenchEnv(ctx context.Context, cfg gatewaysim.Config, conns int) (*benchEnv, error) {
	dir, err := os.MkdirTemp("", "callcontrol-bench-")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{dir: dir, stop: func() error { return nil }}
	if e.ns, err = startNATS("127.0.0.1:0", filepath.Join(dir, "jetstream")); err != nil {
		e.close()
		return nil, err
	}
	e.nf = natsFlags{url: e.ns.ClientURL(), replicas: 1}
	if e.nc, e.js, err = e.nf.connect("bench"); err != nil {
		e.close()
		return nil, err
	}
	if e.ajs, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(1<<16)); err != nil {
		e.close()
		return nil, err
	}
	topo := worker.Topology{Replicas: 1, PollLeaseTTL: poller.DefaultConfig().LeaseTTL}
	if err := worker.Provision(ctx, e.js, topo, worker.DefaultConfig()); err != nil {
		e.close()
		return nil, err
	}
	sf := simFlags{listen: "127.0.0.1:0", cfg: cfg}
	if e.sim, err = sf.start(); err != nil {
		e.close()
		return nil, err
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.sim.serve(simCtx) }()
	e.stop = sync.OnceValue(func() error { stopSim(); return <-done })
	e.caFile = filepath.Join(dir, "gateway-ca.pem")
	if err := os.WriteFile(e.caFile, e.sim.certPE, 0o600); err != nil {
		e.close()
		return nil, err
	}
	if e.gw, err = devGateway(e.sim, conns); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// close stops the children, the simulator and NATS, and removes the storage.
func (e *benchEnv) close() {
	for _, k := range e.kids {
		k.stop()
	}
	if e.gw != nil {
		e.gw.Close()
	}
	_ = e.stop()
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	_ = os.RemoveAll(e.dir)
}

// call puts agent on a call with customer(agent) unless it is on one.
func (e *benchEnv) call(agent int) error {
	if _, err := e.sim.sim.StartCall(agent, benchCustomer(agent)); err != nil && !strings.Contains(err.Error(), "already") {
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

func benchCustomer(agent int) string { return "5550" + strconv.Itoa(agent) }

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
