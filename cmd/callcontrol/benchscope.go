package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/events"
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
// Each range runs in two halves, in the order skip, plain, call_id,
// call_info, call_info, call_id, plain, skip (the skip worker is started
// twice, the checked worker once in between): every range's halves sit
// symmetrically about the middle of the sequence, so a load that drifts
// steadily on the shared machine weighs on each range alike.
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

// scopeOrder is the sequence of halves (see above).
var scopeOrder = []scopeKind{scopeSkip, scopePlain, scopeCallID, scopeCallInfo, scopeCallInfo, scopeCallID, scopePlain, scopeSkip}

// scopeAgents are the agents of one scoped run: n per range, and the
// warm-ups of the three worker starts (conc each: skip, checked, skip).
type scopeAgents struct {
	Ranges [scopeKinds][]int
	Warm   [3][]int
}

// scopeAgentsFrom lays the agents out from first on: 4n + 3conc agents.
func scopeAgentsFrom(first, n, conc int) scopeAgents {
	var s scopeAgents
	for k := range scopeKinds {
		s.Ranges[k] = agentRange(first, n)
		first += n
	}
	for i := range s.Warm {
		s.Warm[i] = agentRange(first, conc)
		first += conc
	}
	return s
}

// all is every agent of s.
func (s scopeAgents) all() []int {
	return slices.Concat(s.Ranges[0], s.Ranges[1], s.Ranges[2], s.Ranges[3], s.Warm[0], s.Warm[1], s.Warm[2])
}

// scopeMeasure is what a scoped run measured, by range.
type scopeMeasure struct {
	Elapsed  [scopeKinds]time.Duration // both halves: first publish to last result
	CPU      [scopeKinds]time.Duration // the worker's, both halves
	Self     [scopeKinds]time.Duration // this process's (NATS server, simulator, publisher), both halves
	Accepted [scopeKinds]int
	Sent     [scopeKinds][]time.Time // when each command of Ranges[k] was published
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
				Calls: []events.Call{{CallID: ids[a], Parties: []string{benchCustomer(a)}, Phase: events.CallTalking,
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
		calls := e.sim.sim.Calls(a)
		if len(calls) == 0 {
			return nil, fmt.Errorf("agent %d has no call", a)
		}
		ids[a] = calls[len(calls)-1].CallID
	}
	return ids, nil
}

// scopedRuns runs the four ranges (see scopeKind) with conc in flight,
// published at one per every (0 = as fast as publish acks allow), each
// command's result awaited. checked, if not nil, is called with the
// checked worker once it is warm (e.g. to profile it); the function it
// returns is waited for before that worker stops. Every command must be
// accepted.
func (e *benchEnv) scopedRuns(ctx context.Context, prog *progress, label string, results *tap, conc int, every time.Duration,
	agents scopeAgents, checked func(*child) func()) (scopeMeasure, error) {
	var m scopeMeasure
	ids, err := e.seedCallStates(ctx, slices.Concat(agents.Ranges[scopePlain], agents.Ranges[scopeCallID], agents.Warm[1]))
	if err != nil {
		return m, err
	}
	for k := range scopeKinds {
		m.Sent[k] = make([]time.Time, len(agents.Ranges[k]))
	}
	workers := [3][]string{
		{"--concurrency", strconv.Itoa(conc), "--skip-call-check"},
		{"--concurrency", strconv.Itoa(conc), "--call-state-max-age", benchCallStateMaxAge.String()},
		{"--concurrency", strconv.Itoa(conc), "--skip-call-check"},
	}
	names := [3]string{"worker-skip-1", "worker-checked", "worker-skip-2"}
	var w *child
	wait := func() {}
	start := func(i int) error {
		if w != nil {
			wait()
			w.stop() // one worker at a time: they share the consumer
		}
		prog.set(fmt.Sprintf("%s: starting %s", label, names[i]), 0, 0)
		if w, err = e.startNamed(ctx, names[i], "worker", workers[i]...); err != nil {
			return err
		}
		if err := e.warmUp(ctx, results, agents.Warm[i]); err != nil {
			return err
		}
		if i == 1 && checked != nil {
			wait = checked(w)
		} else {
			wait = func() {}
		}
		return nil
	}
	half := [scopeKinds]int{} // which half of each range runs next
	for i, k := range scopeOrder {
		switch i {
		case 0:
			err = start(0)
		case 1:
			err = start(1)
		case len(scopeOrder) - 1:
			err = start(2)
		}
		if err != nil {
			return m, err
		}
		rng := agents.Ranges[k]
		lo, hi := 0, len(rng)/2
		if half[k] == 1 {
			lo, hi = hi, len(rng)
		}
		half[k]++
		var calls map[int]string
		if k == scopeCallID {
			calls = ids
		}
		s0, err := w.stats()
		if err != nil {
			return m, err
		}
		self0 := selfCPU()
		acc0 := results.status(string(events.StatusAccepted))
		sent := m.Sent[k][lo:hi]
		elapsed, err := e.pipeline(ctx, prog, fmt.Sprintf("%s: %s (%d/2)", label, scopeNames[k], half[k]), results, rng[lo:hi], calls, every,
			func(j int, t time.Time) { sent[j] = t })
		if err != nil {
			return m, err
		}
		self := selfCPU() - self0
		s1, err := w.stats()
		if err != nil {
			return m, err
		}
		m.Elapsed[k] += elapsed
		m.Self[k] += self
		m.CPU[k] += s1.CPU - s0.CPU
		m.Accepted[k] += results.status(string(events.StatusAccepted)) - acc0
	}
	w.stop()
	for k := range scopeKinds {
		if m.Accepted[k] != len(agents.Ranges[k]) {
			return m, fmt.Errorf("%s: %s: %d of %d commands accepted; see the workers' logs in %s", label, scopeNames[k],
				m.Accepted[k], len(agents.Ranges[k]), e.dir)
		}
	}
	return m, nil
}

// scopeResult is what the call check costs in one scenario, in the
// scenario's figure: throughput (ceiling) or p99 latency (latency).
type scopeResult struct {
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

func newScopeResult(unit string, plain, callID, skip, callInfo float64) *scopeResult {
	return &scopeResult{Unit: unit, Plain: plain, CallID: callID, Skip: skip, CallInfo: callInfo,
		RatioCallID: callID / skip, RatioPlain: plain / skip, RatioCallInfo: callInfo / skip}
}
