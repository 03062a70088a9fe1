package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

type PipeResult struct {
	InFlight  int     `json:"in_flight"`
	Commands  int     `json:"commands"`
	PerS      float64 `json:"cmd_per_s"`       // steady state: see steadyRate
	Whole     float64 `json:"whole_run_per_s"` // first publish to last result
	Ideal     float64 `json:"ideal_cmd_per_s"`
	Ratio     float64 `json:"ratio_ideal"`
	BareHTTP  float64 `json:"bare_http_per_s"` // the same in flight, POSTs alone, steady state
	RatioHTTP float64 `json:"ratio_bare_http"`
	PeakRSS   int64   `json:"worker_peak_rss_bytes"`
	WorkerCPU int64   `json:"worker_cpu_us_per_cmd"`
	// At the highest level only: the least a worker does (executeFloor),
	// steady state, without and with a ledger write before the POST.
	ExecuteOnly   float64 `json:"execute_only_per_s,omitempty"`
	ExecuteLedger float64 `json:"execute_with_ledger_per_s,omitempty"`
}

// steadyRate is the throughput between the 10th and the 90th percentile
// of the completion times: the rate with the pipeline full, without the
// ramp-up (the first M commands all start at once) and the drain (the last
// ones finish with the pipeline emptying), which a run of a few rounds
// would otherwise count against it.
func steadyRate(at []time.Time) float64 {
	if len(at) < 10 {
		return 0
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	lo, hi := len(at)/10, len(at)*9/10
	return float64(hi-lo) / at[hi].Sub(at[lo]).Seconds()
}

// seenAt returns when each of ids was seen (the ones seen).
func seenAt(seen map[string]time.Time, ids []string) []time.Time {
	at := make([]time.Time, 0, len(ids))
	for _, id := range ids {
		if t, ok := seen[id]; ok {
			at = append(at, t)
		}
	}
	return at
}

// benchPipelining runs each level in turn against a 50 ms simulator: a
// fresh worker with that many slots, then the bare POST loop on the same
// agents.
func benchPipelining(ctx context.Context, rn *runner) error {
	sz, prog, rep := rn.cfg.Sizes, rn.prog, rn.rep
	maxLevel := slices.Max(sz.Levels)
	env, err := newBenchEnv(ctx, rn.cfg, gatewaysim.Config{AuthMode: 1, Latency: sz.SlowGateway}, maxLevel)
	if err != nil {
		return err
	}
	defer env.close()
	total := 0
	for _, m := range sz.Levels {
		total += m * sz.PerLevel
	}
	warm := agentRange(101, maxLevel)
	floorAgents := floorRanges(101+maxLevel+total, maxLevel*sz.PerLevel, maxLevel)
	prog.set("pipelining: signing agents in", 0, 0)
	guids, err := env.signIn(ctx, slices.Concat(warm, agentRange(101+maxLevel, total), floorAgents[0], floorAgents[1]), true)
	if err != nil {
		return err
	}
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()
	next := 101 + maxLevel
	for _, m := range sz.Levels {
		agents := agentRange(next, m*sz.PerLevel)
		next += len(agents)
		r, err := pipelineLevel(ctx, env, prog, results, m, warm[:m], agents, guids)
		if err != nil {
			return err
		}
		r.Ideal = float64(m) / sz.SlowGateway.Seconds()
		r.Ratio = r.PerS / r.Ideal
		if m == maxLevel {
			prog.set(fmt.Sprintf("pipelining: the least a worker does, %d in flight", m), 0, 0)
			floors, err := env.floors(ctx, guids, floorAgents, m, 0)
			if err != nil {
				return err
			}
			r.ExecuteOnly, r.ExecuteLedger = steadyRate(floors[0].Done), steadyRate(floors[1].Done)
		}
		rep.Pipelining = append(rep.Pipelining, r)
	}
	return nil
}

// pipelineLevel measures one level: m slots, one command per agent.
func pipelineLevel(ctx context.Context, env *benchEnv, prog *progress, results *tap, m int, warm, agents []int,
	guids map[int]string) (PipeResult, error) {
	n := len(agents)
	// The measured agents' call state is fresh, as live pollers keep it
	// (see seedCallStates): the worker checks each command's call against
	// it, with no gateway round trip.
	w, err := env.start(ctx, "worker", "--concurrency", strconv.Itoa(m), "--call-state-max-age", "1h")
	if err != nil {
		return PipeResult{}, err
	}
	defer w.stop()
	if err := env.warmUp(ctx, results, warm); err != nil {
		return PipeResult{}, err
	}
	if err := env.callAll(warm); err != nil { // back on a call for the next level
		return PipeResult{}, err
	}
	if _, err := env.seedCallStates(ctx, agents); err != nil {
		return PipeResult{}, err
	}
	s0, err := w.stats()
	if err != nil {
		return PipeResult{}, err
	}
	elapsed, err := env.pipeline(ctx, prog, fmt.Sprintf("pipelining: %d in flight", m), results, agents, nil, 0, nil)
	if err != nil {
		return PipeResult{}, err
	}
	s1, err := w.stats()
	if err != nil {
		return PipeResult{}, err
	}
	w.stop() // idle from here on, but out of the baseline's way
	ids := make([]string, n)
	for i, a := range agents {
		ids[i] = CommandID("run", a)
	}
	r := PipeResult{InFlight: m, Commands: n, PerS: steadyRate(seenAt(results.seen(), ids)), Whole: float64(n) / elapsed.Seconds(),
		PeakRSS: s1.PeakRSS, WorkerCPU: (s1.CPU - s0.CPU).Microseconds() / int64(n)}

	prog.set(fmt.Sprintf("pipelining: bare HTTP, %d in flight", m), 0, 0)
	if err := env.callAll(agents); err != nil { // back on a call for the baseline
		return PipeResult{}, err
	}
	_, done, err := bareHTTPLoop(ctx, env.gw, guids, agents, m)
	if err != nil {
		return PipeResult{}, err
	}
	r.BareHTTP = steadyRate(done)
	r.RatioHTTP = r.PerS / r.BareHTTP
	return r, nil
}
