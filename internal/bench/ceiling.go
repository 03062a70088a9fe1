package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

type CeilingResult struct {
	Commands       int     `json:"commands"`
	Concurrency    int     `json:"concurrency"`
	Pipeline       float64 `json:"pipeline_cmd_per_s"`
	BareHTTP       float64 `json:"bare_http_req_per_s"`
	RawJetStream   float64 `json:"raw_jetstream_msg_per_s"`
	RatioHTTP      float64 `json:"ratio_http"`
	RatioJetStream float64 `json:"ratio_jetstream"`
	Writes         float64 `json:"worker_writes_alone_cmd_per_s"` // see writeFloor
	RatioWrites    float64 `json:"ratio_writes"`
	ExecuteOnly    float64 `json:"execute_only_cmd_per_s"` // see executeFloor
	RatioExecute   float64 `json:"ratio_execute_only_http"`
	ExecuteLedger  float64 `json:"execute_with_ledger_cmd_per_s"` // executeFloor with a ledger write
	RatioLedger    float64 `json:"ratio_execute_with_ledger_http"`
	WorkerCPU      int64   `json:"worker_cpu_us_per_cmd"`
	ServerCPU      int64   `json:"nats_and_gateway_cpu_us_per_cmd"` // this process: NATS server, simulator, publisher
	Accepted       int     `json:"accepted"`
	// The pipeline figures above are those of plain commands with fresh
	// call state; CallCheck sets them against a worker without the check
	// (see scope.go), with CPU per command of each range.
	CallCheck         *ScopeResult   `json:"call_check"`
	CallCheckSegments []ScopeSegment `json:"call_check_segments"`
	WorkerCPUCallID   int64          `json:"worker_cpu_us_per_cmd_call_id"`
	WorkerCPUSkip     int64          `json:"worker_cpu_us_per_cmd_skip_call_check"`
	WorkerCPUCallInfo int64          `json:"worker_cpu_us_per_cmd_call_info"`
	ServerCPUSkip     int64          `json:"nats_and_gateway_cpu_us_per_cmd_skip_call_check"`
	ServerCPUCallInfo int64          `json:"nats_and_gateway_cpu_us_per_cmd_call_info"`
}

func benchCeiling(ctx context.Context, rn *runner) error {
	sz, prog, rep := rn.cfg.Sizes, rn.prog, rn.rep
	n, conc := sz.CeilingN, sz.CeilingConc
	env, err := newBenchEnv(ctx, rn.cfg, gatewaysim.Config{AuthMode: 1}, conc)
	if err != nil {
		return err
	}
	defer env.close()
	httpAgents := agentRange(101, n)
	floorAgents := floorRanges(101+n, n, conc)
	scope := scopeAgentsFrom(101+n+2*(n+conc), n, conc, sz.ScopeRounds)
	prog.set("ceiling: signing agents in", 0, 0)
	guids, err := env.signIn(ctx, slices.Concat(httpAgents, floorAgents[0], floorAgents[1], scope.all()), true)
	if err != nil {
		return err
	}
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()

	prog.set("ceiling: bare HTTP loop", 0, 0)
	start, done, err := bareHTTPLoop(ctx, env.gw, guids, httpAgents, conc)
	if err != nil {
		return err
	}
	bare := perSecond(start, done)
	prog.set("ceiling: raw JetStream consume+ack", 0, 0)
	raw, err := rawConsumeAck(ctx, env.js, n, conc)
	if err != nil {
		return err
	}
	prog.set("ceiling: the worker's JetStream writes alone", 0, 0)
	floor, err := writeFloor(ctx, env.js, n, conc)
	if err != nil {
		return err
	}
	prog.set("ceiling: the least a worker does", 0, 0)
	floors, err := env.floors(ctx, guids, floorAgents, conc, 0)
	if err != nil {
		return err
	}
	least := [2]float64{perSecond(floors[0].Start, floors[0].Done), perSecond(floors[1].Start, floors[1].Done)}
	m, err := env.scopedRuns(ctx, prog, "ceiling", results, conc, 0, scope, ceilingProfile(rn.cfg.ProfileDir))
	if err != nil {
		return err
	}
	perCmd := func(d time.Duration) int64 { return d.Microseconds() / int64(n) }
	pipe := m.perS(scopePlain, n)
	rep.Ceiling = &CeilingResult{Commands: n, Concurrency: conc, Pipeline: pipe, BareHTTP: bare, RawJetStream: raw,
		RatioHTTP: pipe / bare, RatioJetStream: pipe / raw, Writes: floor, RatioWrites: pipe / floor,
		ExecuteOnly: least[0], RatioExecute: least[0] / bare, ExecuteLedger: least[1], RatioLedger: least[1] / bare,
		WorkerCPU: perCmd(m.CPU[scopePlain]), ServerCPU: perCmd(m.Self[scopePlain]),
		Accepted:        m.Accepted[scopePlain],
		CallCheck:       newScopeResult("cmd/s", pipe, m.perS(scopeCallID, n), m.perS(scopeSkip, n), m.perS(scopeCallInfo, n)),
		WorkerCPUCallID: perCmd(m.CPU[scopeCallID]), WorkerCPUSkip: perCmd(m.CPU[scopeSkip]), WorkerCPUCallInfo: perCmd(m.CPU[scopeCallInfo]),
		ServerCPUCallInfo: perCmd(m.Self[scopeCallInfo]), ServerCPUSkip: perCmd(m.Self[scopeSkip]), CallCheckSegments: m.Segments}
	return nil
}

// ceilingProfile is scopedRuns' checked for Config.ProfileDir: a 5 s CPU
// profile of the first checked worker into dir (nil: dir is "").
func ceilingProfile(dir string) func(*child) func() {
	if dir == "" {
		return nil
	}
	return func(w *child) func() {
		profiled := make(chan struct{})
		go func() {
			defer close(profiled)
			w.profile(filepath.Join(dir, "worker-ceiling.pprof"), 5*time.Second)
		}()
		return func() { <-profiled } // the runs may be shorter than the profile: keep the worker up
	}
}

// bareHTTPLoop POSTs one disconnect per agent from conc goroutines straight
// to the simulator, on a warm connection pool, and returns when the first
// started and when each completed.
func bareHTTPLoop(ctx context.Context, gw *gateway.Client, guids map[int]string, agents []int, conc int) (time.Time, []time.Time, error) {
	var wg sync.WaitGroup
	for range conc { // open the pool: 100-006, no such session
		wg.Add(1)
		go func() { defer wg.Done(); _ = gw.Disconnect(ctx, 59999, "1", "warm-up") }()
	}
	wg.Wait()
	var next atomic.Int64
	done := make([]time.Time, len(agents))
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range conc {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(agents); i = int(next.Add(1) - 1) {
				a := agents[i]
				if err := gw.Disconnect(gctx, a, Customer(a), guids[a]); err != nil {
					return fmt.Errorf("bare HTTP: %w", err)
				}
				done[i] = time.Now()
			}
			return nil
		})
	}
	return start, done, g.Wait()
}

// perSecond is len(done) over the time from start to the last of done.
func perSecond(start time.Time, done []time.Time) float64 {
	return float64(len(done)) / slices.MaxFunc(done, func(a, b time.Time) int { return a.Compare(b) }).Sub(start).Seconds()
}

// writeFloor runs, from conc goroutines and with no gateway and no
// consumer, the JetStream writes the worker makes for one accepted
// command, on the same buckets: agent lease create and delete, ledger start
// and done, pending record, result (to a scratch stream, with a Nats-Msg-Id).
// Commands/s: with as many commands in flight, no worker that keeps these
// writes goes faster on this machine.
func writeFloor(ctx context.Context, js jetstream.JetStream, n, conc int) (float64, error) {
	var kv [3]jetstream.KeyValue
	for i, b := range []string{events.BucketLeases, events.BucketLedger, events.BucketPending} {
		var err error
		if kv[i], err = js.KeyValue(ctx, b); err != nil {
			return 0, err
		}
	}
	leases, led, pending := kv[0], kv[1], kv[2]
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_FLOOR", Subjects: []string{"bench.BENCH_FLOOR"}}); err != nil {
		return 0, err
	}
	res := events.Result{AgentID: 59999, Number: Customer(59999), Status: events.StatusAccepted, RetCode: "0",
		Attempts: 1, IssuedAt: time.Now(), CompletedAt: time.Now(), ExpiresAt: time.Now()}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range conc {
		g.Go(func() error {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				id := "floor-" + strconv.FormatInt(i, 10)
				key := "agent.floor" + strconv.FormatInt(i, 10)
				rev, err := leases.Create(gctx, key, []byte("bench"))
				if err != nil {
					return err
				}
				if _, err := led.Create(gctx, id, ledger.Started("bench", "")); err != nil {
					return err
				}
				r := res
				r.CommandID = id
				data, _ := json.Marshal(r)
				if _, err := pending.Put(gctx, events.PendingKey(r.AgentID, id), data); err != nil {
					return err
				}
				if _, err := led.Put(gctx, id, ledger.Done(&r, 0)); err != nil {
					return err
				}
				m := nats.NewMsg("bench.BENCH_FLOOR")
				m.Data = data
				m.Header.Set(events.HeaderMsgID, events.ResultMsgID(id))
				if _, err := js.PublishMsg(gctx, m); err != nil {
					return err
				}
				if err := leases.Delete(gctx, key, jetstream.LastRevision(rev)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("write floor: %w", err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rawConsumeAck publishes n messages to a scratch stream while conc
// goroutines consume (one pull subscription) and ack them: messages/s.
func rawConsumeAck(ctx context.Context, js jetstream.JetStream, n, conc int) (float64, error) {
	cons, err := scratchConsumer(ctx, js, "BENCH_RAW")
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(conc))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var done atomic.Int64
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				if m.Ack() == nil {
					done.Add(1)
				}
			}
		}()
	}
	go func() {
		defer close(msgs)
		for i := 0; i < n; i++ {
			m, err := it.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	start := time.Now()
	payload := make([]byte, 200)
	for range n {
		if _, err := js.PublishAsync("bench.BENCH_RAW", payload); err != nil {
			return 0, err
		}
	}
	err = benchWait(ctx, time.Minute, "raw consume", func() bool { return done.Load() >= int64(n) })
	elapsed := time.Since(start)
	wg.Wait()
	return float64(n) / elapsed.Seconds(), err
}
