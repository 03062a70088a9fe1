package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// A Go service disconnects a call and waits for the result and the
// confirmation over NATS, as `callcontrol disconnect --wait` does (README
// "From Go": the block there is this example's code after exampleWorld,
// checked by TestReadmeGoExample).
func ExampleClient_Submit() {
	js, stop := exampleWorld() // an embedded NATS server, a worker and a poller; agent 101 on a call
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := admin.New(js)
	if err != nil {
		log.Fatal(err)
	}
	cmd := events.DisconnectCommand{CommandID: "crm-case-4711", AgentID: 101, Number: "5550101", TTL: time.Minute}
	if err := cmd.Validate(); err != nil {
		log.Fatal(err)
	}
	sub, err := client.Submit(ctx, cmd, admin.SubmitOptions{Confirm: true})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	res, _, err := sub.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("result:", res.Status)
	if res.Status == events.StatusAccepted {
		conf, err := sub.Confirmation(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("confirmation:", conf.Status)
	}
	// Output:
	// result: accepted
	// confirmation: confirmed
}

// exampleWorld starts what a deployment runs, in this process: an embedded
// NATS server (provisioned), a gateway simulator with agent 101 signed in
// and on a call with 5550101, a worker and a poller. stop ends them all.
func exampleWorld() (jetstream.JetStream, func()) {
	dir, err := os.MkdirTemp("", "callcontrol-example-")
	check(err)
	ns, err := natsembed.Start(natsembed.Config{Listen: "127.0.0.1:0", DataDir: dir})
	check(err)
	nc, err := nats.Connect(ns.ClientURL())
	check(err)
	js, err := jetstream.New(nc)
	check(err)
	ctx, cancel := context.WithCancel(context.Background())
	pcfg := poller.Config{LeaseTTL: 3 * time.Second, PollTimeout: 2 * time.Second} // quick to claim the agent and to stop
	topo := topology.Config{Workers: worker.DefaultConfig().Topology(), Pollers: pcfg.Topology()}
	check(topology.Provision(ctx, js, topo, topology.All))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	sim := gatewaysim.New(gatewaysim.Config{PollHold: 200 * time.Millisecond})
	srv, err := gatewaysim.NewServer(sim, ln, gatewaysim.ServerConfig{PlainHTTP: true, ErrorLog: log.New(io.Discard, "", 0)})
	check(err)
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- srv.Run(simCtx) }()
	gw, err := gateway.New(gateway.Config{BaseURL: srv.URL(), MaxConns: 8})
	check(err)
	pgw, err := gateway.New(gateway.Config{BaseURL: srv.URL(), MaxConns: 8})
	check(err)
	c, err := admin.New(js)
	check(err)
	check(c.SignIn(ctx, gw, 101, gateway.SignInRequest{}, sim.AuthMode(), false))
	_, err = sim.StartCall(101, "5550101")
	check(err)
	w, err := worker.New(worker.DefaultConfig(), js, gw)
	check(err)
	p, err := poller.New(pcfg, js, pgw)
	check(err)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return p.Run(gctx) })
	return js, func() {
		cancel()
		check(ignoreCanceled(g.Wait()))
		gw.Close()
		pgw.Close()
		stopSim()
		check(<-simDone)
		nc.Close()
		ns.Shutdown()
		check(os.RemoveAll(dir))
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// The README's "From Go" block is ExampleClient_Submit's code as written
// (after the world it runs in), so that running the example runs it.
func TestReadmeGoExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n### From Go\n")
	_, block, ok2 := strings.Cut(sec, "\n```go\n")
	block, _, ok3 := strings.Cut(block, "\n```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no go block under \"### From Go\"")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "\tdefer stop()\n\n")
	body, _, ok2 = strings.Cut(body, "\n\t// Output:")
	if !ok || !ok2 {
		t.Fatal("example_test.go: ExampleClient_Submit has no body after exampleWorld")
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if got := strings.Join(lines, "\n"); got != block {
		t.Errorf("README \"From Go\" block is not ExampleClient_Submit's code:\n%s\nwant:\n%s", block, got)
	}
}
