package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/metrics"
	"golang.org/x/sync/errgroup"
)

// What the call check costs (README "Call scope"). The ceiling and the
// latency scenarios run the worker on four ranges of agents in the same
// run, each agent on a call with its customer:
//
//   - plain: plain commands, the call check as production runs it with
//     fresh call state (the watched cache of the calls bucket, no round
//     trip; the call is pinned in the started record the worker writes
//     anyway);
//   - call_id: the same with the call's call_id on each command;
//   - skip: a worker with --skip-call-check (its own child process): the
//     baseline, the worker without the check;
//   - call_info: plain commands for agents without call state: the check
//     asks the gateway's call-info query (one more HTTPS GET per attempt)
//     and pins the call with one more ledger write, as a deployment pays
//     whose call state is not fresh.
//
// The bench runs no poller in these scenarios; it stands in for one by
// writing a fresh events.CallState for the plain and call_id agents (and
// the checked worker's warm-up agents) before the run, and starts the
// checked worker with a --call-state-max-age longer than the run.
//
// Each range runs in 2×rounds segments; each round is the sequence skip,
// plain, call_id, call_info, call_info, call_id, plain, skip (a new worker
// process wherever the sequence changes between skip and the others):
// every range's segments sit symmetrically about the middle of each
// round, so a load that drifts steadily on the shared machine weighs on
// each range alike, and each range is spread over the whole run, so that a
// burst of load elsewhere on the machine falls on a segment of one range,
// not on all of it.
type scopeKind int

const (
	scopePlain scopeKind = iota
	scopeCallID
	scopeSkip
	scopeCallInfo
	scopeKinds
)

var scopeNames = [scopeKinds]string{"plain commands", "commands with call_id", "--skip-call-check", "no call state: call-info query"}

// benchCallStateMaxAge is the checked worker's --call-state-max-age: the
// call state the bench writes before the run stays fresh for all of it.
const benchCallStateMaxAge = time.Hour

// scopeRound is one round of segments (see above).
var scopeRound = []scopeKind{scopeSkip, scopePlain, scopeCallID, scopeCallInfo, scopeCallInfo, scopeCallID, scopePlain, scopeSkip}

// scopeSegments is the sequence of rounds rounds, with the worker process
// each segment runs on (a new one each time it changes between checked
// and --skip-call-check) and how many worker processes that takes.
func scopeSegments(rounds int) (seq []scopeKind, proc []int, procs int) {
	for range rounds {
		seq = append(seq, scopeRound...)
	}
	proc = make([]int, len(seq))
	for i, k := range seq {
		if i > 0 && (k == scopeSkip) != (seq[i-1] == scopeSkip) {
			procs++
		}
		proc[i] = procs
	}
	return seq, proc, procs + 1
}

// scopeAgents are the agents of one scoped run: n per range, and the
// warm-up agents (conc) of each worker process.
type scopeAgents struct {
	Rounds int
	Ranges [scopeKinds][]int
	Warm   [][]int
}

// scopeAgentsFrom lays the agents out from first on: 4n + conc per
// worker process (scopeAgentCount).
func scopeAgentsFrom(first, n, conc, rounds int) scopeAgents {
	s := scopeAgents{Rounds: rounds}
	for k := range scopeKinds {
		s.Ranges[k] = agentRange(first, n)
		first += n
	}
	_, _, procs := scopeSegments(rounds)
	for range procs {
		s.Warm = append(s.Warm, agentRange(first, conc))
		first += conc
	}
	return s
}

// scopeAgentCount is how many agents scopeAgentsFrom lays out.
func scopeAgentCount(n, conc, rounds int) int {
	_, _, procs := scopeSegments(rounds)
	return int(scopeKinds)*n + procs*conc
}

// all is every agent of s.
func (s scopeAgents) all() []int {
	return slices.Concat(append(s.Ranges[:], s.Warm...)...)
}

// scopeMeasure is what a scoped run measured, by range.
type scopeMeasure struct {
	Elapsed  [scopeKinds]time.Duration // each segment's first publish to its last result, summed
	CPU      [scopeKinds]time.Duration // the worker's, in the segments
	Self     [scopeKinds]time.Duration // this process's (NATS server, simulator, publisher), in the segments
	Accepted [scopeKinds]int
	Sent     [scopeKinds][]time.Time // when each command of Ranges[k] was published
	// The worker's call_check_window_seconds (every source) and
	// call_check_to_answer_seconds, in the segments. The window of the
	// ranges with call state counts from the state the bench wrote before
	// the run: only AfterCheck says something there.
	Window, AfterCheck [scopeKinds]metrics.Histogram
	Segments           []ScopeSegment
}

// ScopeSegment is one segment of a scoped run, in results.json so that a
// segment that stalls (one slow command, or all of them) shows which.
type ScopeSegment struct {
	Range   string        `json:"range"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Slowest time.Duration `json:"slowest_command_ns"` // publish to result
}

// slowest returns the longest time from sent[i] to the result of agents[i]'s command.
func slowest(seen map[string]time.Time, agents []int, sent []time.Time) time.Duration {
	var d time.Duration
	for i, a := range agents {
		if t, ok := seen[CommandID("run", a)]; ok {
			d = max(d, t.Sub(sent[i]))
		}
	}
	return d
}

// checkHistograms reads the worker's two call check window histograms.
func checkHistograms(w *child) (window, after metrics.Histogram, err error) {
	if window, err = w.histogram("callcontrol_call_check_window_seconds", nil); err != nil {
		return window, after, err
	}
	after, err = w.histogram("callcontrol_call_check_to_answer_seconds", nil)
	return window, after, err
}

// perS is range k's commands per second.
func (m *scopeMeasure) perS(k scopeKind, n int) float64 { return float64(n) / m.Elapsed[k].Seconds() }

// seedCallStates writes a fresh call state for each of agents, standing in
// for the poller: polling, observed now, the agent's call (as the
// simulator has it) with its customer as the party, since a second ago.
// It returns the agents' call IDs.
func (e *benchEnv) seedCallStates(ctx context.Context, agents []int) (map[int]string, error) {
	kv, err := e.js.KeyValue(ctx, events.BucketCalls)
	if err != nil {
		return nil, err
	}
	ids, err := e.callIDs(agents)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, a := range agents {
		g.Go(func() error {
			st := events.CallState{AgentID: a, Owner: "bench", Polling: true, ObservedAt: now,
				Calls: []events.Call{{CallID: ids[a], Parties: []string{Customer(a)}, Phase: events.CallTalking,
					Since: now.Add(-time.Second)}},
				LastEvent: "AgentEvent_Talking", LastEventAt: now.Add(-time.Second)}
			data, err := json.Marshal(st)
			if err != nil {
				return err
			}
			_, err = kv.Put(gctx, events.CallStateKey(a), data)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed call state: %w", err)
	}
	return ids, nil
}

// callIDs returns the ID of each agent's last call in the simulator.
func (e *benchEnv) callIDs(agents []int) (map[int]string, error) {
	ids := make(map[int]string, len(agents))
	for _, a := range agents {
		calls := e.sim.Sim.Calls(a)
		if len(calls) == 0 {
			return nil, fmt.Errorf("agent %d has no call", a)
		}
		ids[a] = calls[len(calls)-1].CallID
	}
	return ids, nil
}

// scopedRuns runs the four ranges (see scopeKind) with conc in flight,
// published at one per every (0 = as fast as publish acks allow), each
// command's result awaited. checked, if not nil, is called with the first
// checked worker once it is warm (e.g. to profile it); the function it
// returns is waited for before that worker stops. Every command must be
// accepted.
func (e *benchEnv) scopedRuns(ctx context.Context, prog *progress, label string, results *tap, conc int, every time.Duration,
	agents scopeAgents, checked func(*child) func()) (scopeMeasure, error) {
	r := &scopedRun{e: e, prog: prog, label: label, results: results, conc: conc, every: every, agents: agents,
		checked: checked, wait: func() {}}
	seq, proc, _ := scopeSegments(agents.Rounds)
	var checkedWarm []int
	for i, k := range seq {
		if k != scopeSkip && (i == 0 || proc[i] != proc[i-1]) {
			checkedWarm = append(checkedWarm, agents.Warm[proc[i]]...)
		}
	}
	var err error
	if r.ids, err = e.seedCallStates(ctx, slices.Concat(agents.Ranges[scopePlain], agents.Ranges[scopeCallID], checkedWarm)); err != nil {
		return r.m, err
	}
	for k := range scopeKinds {
		r.m.Sent[k] = make([]time.Time, len(agents.Ranges[k]))
	}
	next := [scopeKinds]int{} // the next segment of each range
	for i, k := range seq {
		if i == 0 || proc[i] != proc[i-1] {
			if err := r.start(ctx, proc[i], k == scopeSkip); err != nil {
				return r.m, err
			}
		}
		if err := r.segment(ctx, k, next[k]); err != nil {
			return r.m, err
		}
		next[k]++
	}
	r.wait()
	r.w.stop()
	for k := range scopeKinds {
		if r.m.Accepted[k] != len(agents.Ranges[k]) {
			return r.m, fmt.Errorf("%s: %s: %d of %d commands accepted; see the workers' logs in %s", label, scopeNames[k],
				r.m.Accepted[k], len(agents.Ranges[k]), e.dir)
		}
	}
	return r.m, nil
}

// scopedRun is one scopedRuns: its arguments, the worker process of the
// current segment and what was measured so far.
type scopedRun struct {
	e        *benchEnv
	prog     *progress
	label    string
	results  *tap
	conc     int
	every    time.Duration
	agents   scopeAgents
	checked  func(*child) func()
	ids      map[int]string // call IDs of the agents with call state
	m        scopeMeasure
	w        *child
	wait     func() // what checked returned, for the current worker
	profiled bool   // checked was called
}

// start stops the current worker, if any, and starts worker process p
// (checked, or with --skip-call-check) and warms it up.
func (r *scopedRun) start(ctx context.Context, p int, skip bool) error {
	if r.w != nil {
		r.wait()
		r.w.stop() // one worker at a time: they share the consumer
	}
	args, name := []string{"--concurrency", strconv.Itoa(r.conc)}, fmt.Sprintf("worker-%d-checked", p+1)
	if skip {
		args, name = append(args, "--skip-call-check"), fmt.Sprintf("worker-%d-skip-call-check", p+1)
	} else {
		args = append(args, "--call-state-max-age", benchCallStateMaxAge.String())
	}
	r.prog.set(fmt.Sprintf("%s: starting %s", r.label, name), 0, 0)
	var err error
	if r.w, err = r.e.startNamed(ctx, name, "worker", args...); err != nil {
		return err
	}
	if err := r.e.warmUp(ctx, r.results, r.agents.Warm[p]); err != nil {
		return err
	}
	r.wait = func() {}
	if !skip && r.checked != nil && !r.profiled {
		r.wait, r.profiled = r.checked(r.w), true
	}
	return nil
}

// workerSample is what a segment reads of the worker before and after.
type workerSample struct {
	stats         ProcStats
	window, after metrics.Histogram
}

func sampleWorker(w *child) (workerSample, error) {
	var s workerSample
	var err error
	if s.stats, err = w.stats(); err != nil {
		return s, err
	}
	s.window, s.after, err = checkHistograms(w)
	return s, err
}

// segment runs segment j of range k on the current worker and adds what
// it measured.
func (r *scopedRun) segment(ctx context.Context, k scopeKind, j int) error {
	parts := 2 * r.agents.Rounds
	rng := r.agents.Ranges[k]
	lo, hi := j*len(rng)/parts, (j+1)*len(rng)/parts
	var calls map[int]string
	if k == scopeCallID {
		calls = r.ids
	}
	s0, err := sampleWorker(r.w)
	if err != nil {
		return err
	}
	self0 := selfCPU()
	acc0 := r.results.status(string(events.StatusAccepted))
	sent := r.m.Sent[k][lo:hi]
	elapsed, err := r.e.pipeline(ctx, r.prog, fmt.Sprintf("%s: %s (%d/%d)", r.label, scopeNames[k], j+1, parts), r.results, rng[lo:hi],
		calls, r.every, func(j int, t time.Time) { sent[j] = t })
	if err != nil {
		return err
	}
	self := selfCPU() - self0
	s1, err := sampleWorker(r.w)
	if err != nil {
		return err
	}
	m := &r.m
	m.Window[k] = m.Window[k].Add(s1.window.Sub(s0.window))
	m.AfterCheck[k] = m.AfterCheck[k].Add(s1.after.Sub(s0.after))
	m.Segments = append(m.Segments, ScopeSegment{Range: scopeNames[k], Elapsed: elapsed, Slowest: slowest(r.results.seen(), rng[lo:hi], sent)})
	m.Elapsed[k] += elapsed
	m.Self[k] += self
	m.CPU[k] += s1.stats.CPU - s0.stats.CPU
	m.Accepted[k] += r.results.status(string(events.StatusAccepted)) - acc0
	return nil
}

// ScopeResult is what the call check costs in one scenario, in the
// scenario's figure: throughput (ceiling) or p99 latency (latency).
type ScopeResult struct {
	Unit     string  `json:"unit"`
	Plain    float64 `json:"plain"`     // (a) plain commands, fresh call state
	CallID   float64 `json:"call_id"`   // (b) commands with call_id, fresh call state
	Skip     float64 `json:"skip"`      // (c) --skip-call-check: the baseline
	CallInfo float64 `json:"call_info"` // (d) plain commands, no call state: call-info query
	// Ratios to Skip: for throughput the share kept (at most about 1),
	// for latency the factor (at least about 1).
	RatioCallID   float64 `json:"ratio_call_id"`
	RatioPlain    float64 `json:"ratio_plain"`
	RatioCallInfo float64 `json:"ratio_call_info"`
}

func newScopeResult(unit string, plain, callID, skip, callInfo float64) *ScopeResult {
	return &ScopeResult{Unit: unit, Plain: plain, CallID: callID, Skip: skip, CallInfo: callInfo,
		RatioCallID: callID / skip, RatioPlain: plain / skip, RatioCallInfo: callInfo / skip}
}

// CheckWindow is the window no call check closes (README "Call scope"),
// as the checked worker observed it in the latency scenario: upper
// bounds of its histograms' buckets.
type CheckWindow struct {
	// CallInfo: commands without call state, from the sending of the
	// call-info query to the disconnect's answer.
	CallInfo WindowQuantiles `json:"call_info"`
	// AfterCheck: commands with fresh call state (plain and call_id),
	// from the check to the disconnect's answer; their whole window adds
	// the age of the state at the check (at most --call-state-max-age; the
	// bench runs no poller, the soak measures it).
	AfterCheck WindowQuantiles `json:"after_check"`
}

type WindowQuantiles struct {
	N   uint64        `json:"n"`
	P50 time.Duration `json:"p50_le_ns"`
	P99 time.Duration `json:"p99_le_ns"`
	Max time.Duration `json:"max_le_ns"`
}

func quantilesOf(h metrics.Histogram) WindowQuantiles {
	return WindowQuantiles{N: h.Count, P50: h.Quantile(0.5), P99: h.Quantile(0.99), Max: h.Quantile(1)}
}

func newCheckWindow(m scopeMeasure) *CheckWindow {
	return &CheckWindow{CallInfo: quantilesOf(m.Window[scopeCallInfo]),
		AfterCheck: quantilesOf(m.AfterCheck[scopePlain].Add(m.AfterCheck[scopeCallID]))}
}
