package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/nats-io/nats.go/jetstream"
)

type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func percentilesOf(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q int) time.Duration { return d[min(len(d)-1, len(d)*q/100)] }
	return Percentiles{N: len(d), P50: at(50), P90: at(90), P99: at(99), Max: d[len(d)-1]}
}

type LatencyResult struct {
	Rate     int         `json:"rate_per_s"`
	Worker   Percentiles `json:"publish_to_post"`
	Raw      Percentiles `json:"raw_publish_to_consume"`
	RatioP50 float64     `json:"ratio_p50"`
	RatioP99 float64     `json:"ratio_p99"`
	// The least a worker does (executeFloor) at the same rate: with no
	// round trip of its own before the POST, and with one (a ledger write).
	Floor       Percentiles `json:"execute_only_publish_to_post"`
	FloorLedger Percentiles `json:"execute_with_ledger_publish_to_post"`
	// Worker is plain commands with fresh call state; beside it the other
	// ranges of the call check (see scope.go), and their p99s set
	// against the worker without the check.
	CallID       Percentiles  `json:"call_id_publish_to_post"`
	Skip         Percentiles  `json:"skip_call_check_publish_to_post"`
	CallInfo     Percentiles  `json:"call_info_publish_to_post"`
	CallCheckP99 *ScopeResult `json:"call_check_p99"`
	CheckWindow  *CheckWindow `json:"call_check_window"`
}

func benchLatency(ctx context.Context, rn *runner) error {
	sz, prog, rep := rn.cfg.Sizes, rn.prog, rn.rep
	const conc = 64
	n := int(float64(sz.Rate) * sz.RateFor.Seconds())
	every := time.Second / time.Duration(sz.Rate)
	env, err := newBenchEnv(ctx, rn.cfg, gatewaysim.Config{AuthMode: 1}, 8)
	if err != nil {
		return err
	}
	defer env.close()
	floorAgents := floorRanges(101, n, conc)
	scope := scopeAgentsFrom(101+2*(n+conc), n, conc, sz.ScopeRounds)
	prog.set("latency: signing agents in", 0, 0)
	guids, err := env.signIn(ctx, slices.Concat(floorAgents[0], floorAgents[1], scope.all()), true)
	if err != nil {
		return err
	}
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()
	prog.set(fmt.Sprintf("latency: raw JetStream at %d/s", sz.Rate), 0, 0)
	raw, err := rawLatency(ctx, env.js, n, every)
	if err != nil {
		return err
	}
	prog.set(fmt.Sprintf("latency: the least a worker does at %d/s", sz.Rate), 0, 0)
	floors, err := env.floors(ctx, guids, floorAgents, conc, every)
	if err != nil {
		return err
	}
	floor, err := floorLatencies(env.sim.Sim, floors)
	if err != nil {
		return err
	}
	m, err := env.scopedRuns(ctx, prog, fmt.Sprintf("latency at %d/s", sz.Rate), results, conc, every, scope, nil)
	if err != nil {
		return err
	}
	var lat [scopeKinds]Percentiles
	for k := range scopeKinds {
		d, err := toGateway(env.sim.Sim, scope.Ranges[k], m.Sent[k])
		if err != nil {
			return fmt.Errorf("%s: %w", scopeNames[k], err)
		}
		lat[k] = percentilesOf(d)
	}
	r := &LatencyResult{Rate: sz.Rate, Worker: lat[scopePlain], Raw: percentilesOf(raw),
		Floor: percentilesOf(floor[0]), FloorLedger: percentilesOf(floor[1]),
		CallID: lat[scopeCallID], Skip: lat[scopeSkip], CallInfo: lat[scopeCallInfo]}
	r.RatioP50 = float64(r.Worker.P50) / float64(r.Raw.P50)
	r.RatioP99 = float64(r.Worker.P99) / float64(r.Raw.P99)
	p99 := func(p Percentiles) float64 { return float64(p.P99) / float64(time.Millisecond) }
	r.CallCheckP99 = newScopeResult("ms p99", p99(r.Worker), p99(r.CallID), p99(r.Skip), p99(r.CallInfo))
	r.CheckWindow = newCheckWindow(m)
	rep.Latency = r
	return nil
}

// floorLatencies are the publish -> POST latencies of the floor's runs.
func floorLatencies(sim *gatewaysim.Sim, floors [2]floorRun) ([2][]time.Duration, error) {
	var floor [2][]time.Duration
	for i, run := range floors {
		var err error
		if floor[i], err = toGateway(sim, run.Agents, run.Sent); err != nil {
			return floor, err
		}
	}
	return floor, nil
}

// toGateway returns, for each of agents, the time from sent[i] to the
// first disconnect of agents[i] arriving at the simulator.
func toGateway(sim *gatewaysim.Sim, agents []int, sent []time.Time) ([]time.Duration, error) {
	arrived := firstArrivals(sim)
	lat := make([]time.Duration, 0, len(agents))
	for i, a := range agents {
		if at, ok := arrived[a]; ok {
			lat = append(lat, at.Sub(sent[i]))
		}
	}
	if len(lat) < len(agents) {
		return nil, fmt.Errorf("%d of %d commands reached the gateway", len(lat), len(agents))
	}
	return lat, nil
}

// firstArrivals maps each agent to the arrival of its first disconnect.
func firstArrivals(sim *gatewaysim.Sim) map[int]time.Time {
	at := map[int]time.Time{}
	for _, d := range sim.Disconnects() {
		if _, ok := at[d.AgentID]; !ok {
			at[d.AgentID] = d.At
		}
	}
	return at
}

// rawLatency publishes n timestamped messages, one per every, and returns
// the time from each publish to its consumption.
func rawLatency(ctx context.Context, js jetstream.JetStream, n int, every time.Duration) ([]time.Duration, error) {
	cons, err := scratchConsumer(ctx, js, "BENCH_LAT")
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Data())))
		_ = m.Ack()
		mu.Lock()
		lat = append(lat, now.Sub(sent))
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d) // pacing the offered load
		}
		if _, err := js.PublishAsync("bench.BENCH_LAT", binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))); err != nil {
			return nil, err
		}
	}
	err = benchWait(ctx, time.Minute, "raw latency", func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= n })
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lat), err
}
