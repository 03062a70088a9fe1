package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// The floor: the least that any worker does for a command. Take it from a
// pull consumer, decode it, POST it, publish its result with a
// Nats-Msg-Id, Ack; with --ledger, also create a ledger record before the
// POST, like the worker's "started" record: the one write that tells a
// later delivery, after a crash, that a request may have gone out. No agent lease, no
// pending record, no retries, none of the other guarantees of the README's
// Reliability section. It runs as a child process like the worker, with
// as many in flight and the same GC setting, so its throughput bounds the
// throughput of any worker that executes and reports every command on
// this machine, and its publish -> POST latency bounds that of a worker
// with as many round trips of its own before the request.

// floorRun is what one run of the floor measured.
type floorRun struct {
	Agents []int       // one command each, after the warm-up's
	Start  time.Time   // first publish
	Sent   []time.Time // when the command of Agents[i] was published
	Done   []time.Time // each command's result seen, in no order
}

// floorRanges are the agents of the floor's two runs (without and with
// its ledger write) from first on: conc to warm up and n to measure each.
func floorRanges(first, n, conc int) [2][]int {
	return [2][]int{agentRange(first, conc+n), agentRange(first+conc+n, conc+n)}
}

// floors runs the floor without the ledger write on agents[0], then with
// it on agents[1] (see executeFloor).
func (e *benchEnv) floors(ctx context.Context, guids map[int]string, agents [2][]int, conc int, every time.Duration) ([2]floorRun, error) {
	var runs [2]floorRun
	for i, withLedger := range []bool{false, true} {
		var err error
		if runs[i], err = e.executeFloor(ctx, withLedger, guids, agents[i], conc, every); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// executeFloor runs the floor in a child process with conc in flight: one
// command for each of the first conc agents, so that it opens its gateway
// connections (as the worker's warm-up does), then, measured, one for each
// of the others, published at one per every (0 = as fast as publish acks
// allow).
func (e *benchEnv) executeFloor(ctx context.Context, withLedger bool, guids map[int]string, agents []int, conc int,
	every time.Duration) (floorRun, error) {
	name := "BENCH_EXEC"
	if withLedger {
		name += "_LEDGER"
	}
	if _, err := scratchConsumer(ctx, e.js, name); err != nil {
		return floorRun{}, err
	}
	subject := "bench." + name + "_RESULTS"
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name + "_RESULTS", Subjects: []string{subject}}); err != nil {
		return floorRun{}, err
	}
	file := filepath.Join(e.dir, name+"-guids.json")
	if err := writeGUIDs(file, guids, agents); err != nil {
		return floorRun{}, err
	}
	results, err := e.tap(subject)
	if err != nil {
		return floorRun{}, err
	}
	defer results.stop()
	c, err := e.start(ctx, "bench-floor", "--stream", name, "--concurrency", strconv.Itoa(conc),
		"--guids", file, "--ledger="+strconv.FormatBool(withLedger))
	if err != nil {
		return floorRun{}, err
	}
	defer c.stop()
	warm := agents[:conc]
	if err := e.publishTo(ctx, "bench."+name, name, warm, 0, nil); err != nil {
		return floorRun{}, fmt.Errorf("floor: publish: %w", err)
	}
	if err := floorWait(ctx, c, results, len(warm)); err != nil {
		return floorRun{}, err
	}
	run := floorRun{Agents: agents[conc:], Start: time.Now(), Sent: make([]time.Time, len(agents)-conc)}
	if err := e.publishTo(ctx, "bench."+name, name, run.Agents, every, func(i int, t time.Time) { run.Sent[i] = t }); err != nil {
		return run, fmt.Errorf("floor: publish: %w", err)
	}
	if err := floorWait(ctx, c, results, len(agents)); err != nil {
		return run, err
	}
	ids := make([]string, len(run.Agents))
	for i, a := range run.Agents {
		ids[i] = benchCommandID(name, a)
	}
	run.Done = seenAt(results.seen(), ids)
	return run, nil
}

// floorWait waits until n results have been seen, or the child exited.
func floorWait(ctx context.Context, c *child, results *tap, n int) error {
	if err := benchWait(ctx, time.Minute, "floor", func() bool { return results.count() >= n || c.exited() }); err != nil {
		return err
	}
	if c.exited() {
		return fmt.Errorf("floor: the child exited; see its log, bench-floor.log")
	}
	return nil
}

// writeGUIDs writes the GUIDs of agents to file for the floor's child.
func writeGUIDs(file string, guids map[int]string, agents []int) error {
	m := make(map[int]string, len(agents))
	for _, a := range agents {
		m[a] = guids[a]
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

// runBenchFloor is the floor's child process (hidden: started by bench).
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
	var guids map[int]string
	if err := json.Unmarshal(b, &guids); err != nil {
		return fmt.Errorf("--guids: %w", err)
	}
	obs, err := health.NewObservability(nil, 0)
	if err != nil {
		return err
	}
	gcfg.MaxConns = conc
	none := func(context.Context, jetstream.JetStream, worker.Topology) error { return nil }
	return serveRole(ctx, "bench-floor", s, &nf, &hf, obs, gcfg, none, func(ctx context.Context, js jetstream.JetStream, gw *gateway.Client) error {
		f := floor{js: js, gw: gw, guids: guids, results: "bench." + stream + "_RESULTS"}
		if withLedger {
			if f.ledger, err = js.KeyValue(ctx, events.BucketLedger); err != nil {
				return err
			}
		}
		cons, err := js.Consumer(ctx, stream, "bench")
		if err != nil {
			return err
		}
		return f.run(ctx, cons, conc)
	})
}

// floor executes commands as described at the top of this file.
type floor struct {
	js      jetstream.JetStream
	gw      *gateway.Client
	ledger  jetstream.KeyValue // nil: none
	guids   map[int]string
	results string // the subject
}

// run executes commands from cons, conc at a time, until ctx ends or one fails.
func (f floor) run(ctx context.Context, cons jetstream.Consumer, conc int) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(conc))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); it.Stop() }()
	g, gctx := errgroup.WithContext(ctx)
	for range conc {
		g.Go(func() error {
			for {
				m, err := it.Next()
				if err != nil {
					return nil // stopped
				}
				if err := f.execute(gctx, m); err != nil {
					it.Stop()
					return err
				}
			}
		})
	}
	return g.Wait()
}

func (f floor) execute(ctx context.Context, m jetstream.Msg) error {
	cmd, err := events.DecodeDisconnect(m.Data())
	if err != nil {
		return err
	}
	if f.ledger != nil {
		if _, err := f.ledger.Create(ctx, cmd.CommandID, ledger.Started("bench-floor", "")); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	if err := f.gw.Disconnect(ctx, cmd.AgentID, cmd.Number, f.guids[cmd.AgentID]); err != nil {
		return err
	}
	now := time.Now().UTC()
	data, err := json.Marshal(events.Result{CommandID: cmd.CommandID, AgentID: cmd.AgentID, Number: cmd.Number,
		Status: events.StatusAccepted, RetCode: "0", Attempts: 1, IssuedAt: now, ExpiresAt: now, CompletedAt: now})
	if err != nil {
		return err
	}
	r := nats.NewMsg(f.results)
	r.Data = data
	r.Header.Set(events.HeaderMsgID, events.ResultMsgID(cmd.CommandID))
	r.Header.Set(events.HeaderCommandID, cmd.CommandID)
	if _, err := f.js.PublishMsg(ctx, r); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	return m.Ack()
}
