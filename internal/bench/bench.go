// Package bench measures what one worker and one poller carry, against
// baselines measured in the same run on the same machine (README
// "Performance"): the throughput ceiling, the HTTP API against the NATS
// path (api.go), pipelining against a slow gateway, publish -> POST
// latency, event -> confirmation latency and the poller's cost at scale,
// each with the call check's cost beside it.
//
// [Run] runs the scenarios in turn. Each builds a world of its own (an
// embedded NATS server with fresh storage, a gateway simulator in this
// process) and runs the worker, the poller and the floor (the least any
// worker does, see [RunFloor]) as child processes of the callcontrol
// binary named by [Config.Executable], so that their CPU, memory,
// goroutines and connections are their own. What belongs to the command
// (starting NATS and the simulator, connecting, registering a session) is
// passed in through [Config].
//
// The [Report] is what the run measured; [Report.Markdown] and
// [Report.SVG] render it, and its JSON form is docs/bench/results.json.
package bench

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Sizes are the sizes of one `callcontrol bench` run.
type Sizes struct {
	CeilingN      int           `json:"ceiling_commands"`
	CeilingConc   int           `json:"ceiling_concurrency"`
	Levels        []int         `json:"pipelining_in_flight"`
	PerLevel      int           `json:"pipelining_rounds"` // commands per level = level × rounds
	SlowGateway   time.Duration `json:"pipelining_gateway_latency_ns"`
	Rate          int           `json:"latency_rate_per_s"`
	RateFor       time.Duration `json:"latency_duration_ns"`
	ConfirmAgents int           `json:"confirmation_agents"`
	PollAgents    int           `json:"poller_agents"`
	PollHold      time.Duration `json:"poller_hold_ns"`
	ScopeRounds   int           `json:"call_check_rounds"` // rounds of the call check's ranges (scope.go)
}

// FullSizes are the sizes of a measurement (minutes).
func FullSizes() Sizes {
	return Sizes{CeilingN: 5000, CeilingConc: 64, Levels: []int{16, 32, 64, 128, 256}, PerLevel: 16,
		SlowGateway: 50 * time.Millisecond, Rate: 1000, RateFor: 5 * time.Second,
		ConfirmAgents: 1000, PollAgents: 10000, PollHold: 10 * time.Second, ScopeRounds: 2}
}

// QuickSizes are small sizes (seconds instead of minutes): a smoke test,
// not a measurement.
func QuickSizes() Sizes {
	return Sizes{CeilingN: 300, CeilingConc: 16, Levels: []int{8, 32}, PerLevel: 4,
		SlowGateway: 50 * time.Millisecond, Rate: 500, RateFor: 600 * time.Millisecond,
		ConfirmAgents: 40, PollAgents: 200, PollHold: time.Second, ScopeRounds: 1}
}

// MaxCeilingCommands is the most commands the ceiling scenario can run
// with s: each command needs an agent of its own (101..59999) in each of
// its seven runs (bare HTTP, two floors, the call check's four ranges),
// beside one per slot for each warm-up.
func (s Sizes) MaxCeilingCommands() int {
	return (59999 - 100 - scopeAgentCount(0, s.CeilingConc, s.ScopeRounds) - 2*s.CeilingConc) / 7
}

// CallCheckSegments is how many segments the call check's ranges run in,
// all ranges together (see [CeilingResult.CallCheckSegments]).
func (s Sizes) CallCheckSegments() int { return len(scopeRound) * s.ScopeRounds }

// Scenarios are the scenarios of a run, in the order they run.
var Scenarios = []string{"ceiling", "api", "pipelining", "latency", "confirmation", "poller"}

// Report is everything one run measured; written as JSON by --json so
// runs of different commits can be compared.
type Report struct {
	Version    string         `json:"version"`
	Started    time.Time      `json:"started"`
	GoVersion  string         `json:"go_version"`
	CPUs       int            `json:"cpus"`
	Sizes      Sizes          `json:"sizes"`
	Ceiling    *CeilingResult `json:"ceiling,omitempty"`
	Pipelining []PipeResult   `json:"pipelining,omitempty"`
	Latency    *LatencyResult `json:"latency,omitempty"`
	Confirm    *ConfirmResult `json:"confirmation,omitempty"`
	Poller     *PollerResult  `json:"poller_scale,omitempty"`
	API        *APIResult     `json:"api,omitempty"`
	// What the HTTP door costs (api.go): POST /v1/disconnects with
	// Prefer: wait against admin.Client.Submit, cmd/s at the ceiling's
	// in-flight count.
	APIRatio float64 `json:"api_ratio,omitempty"`
	// What the call check costs (scope.go), set against the worker
	// with --skip-call-check in the same run: throughput at the ceiling
	// of commands with call_id (the call_scoped_ratio), of plain
	// commands, and of plain commands without call state (the call-info
	// query); and the same for the latency scenario's p99 (a factor: above
	// 1 is slower).
	CallScopedRatio         float64  `json:"call_scoped_ratio,omitempty"`
	CallScopedPlainRatio    float64  `json:"call_scoped_plain_ratio,omitempty"`
	CallInfoRatio           float64  `json:"call_info_ratio,omitempty"`
	CallScopedP99Ratio      float64  `json:"call_scoped_p99_ratio,omitempty"`
	CallScopedPlainP99Ratio float64  `json:"call_scoped_plain_p99_ratio,omitempty"`
	CallInfoP99Ratio        float64  `json:"call_info_p99_ratio,omitempty"`
	Rows                    []Row    `json:"table"`
	Failures                []string `json:"failures,omitempty"`
}

// Row is one line of the printed table.
type Row struct {
	Measure  string  `json:"measure"`
	Value    string  `json:"value"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

// FailedError is Run's error when scenarios failed; the others ran, and
// the report holds what they measured.
type FailedError struct {
	Failures []string // "<scenario>: <error>", in the order they ran
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("bench: %d scenario(s) failed: %s", len(e.Failures), strings.Join(e.Failures, "; "))
}

// runner is one run: its configuration, progress line and report.
type runner struct {
	cfg  Config
	prog *progress
	rep  *Report
}

// Run runs cfg.Scenarios in turn (see the package comment) and returns
// the report, with its table, of those that ran. A scenario that fails is
// written to cfg.Progress and recorded in Report.Failures, the next one
// runs, and Run returns the report with a *FailedError. When ctx ends Run
// returns no report and ctx.Err(). An invalid cfg is an *InvalidConfigError.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, prog: newProgress(cfg.Progress), rep: &Report{Version: cfg.Version, Started: time.Now().UTC(),
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Sizes: cfg.Sizes}}
	steps := map[string]func(context.Context, *runner) error{
		"ceiling": benchCeiling, "api": benchAPI, "pipelining": benchPipelining, "latency": benchLatency,
		"confirmation": benchConfirm, "poller": benchPoller,
	}
	for _, name := range Scenarios {
		if !cfg.runs(name) {
			continue
		}
		if err := steps[name](ctx, r); err != nil {
			r.prog.finish()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.rep.Failures = append(r.rep.Failures, name+": "+err.Error())
			fmt.Fprintf(cfg.Progress, "bench: %s: %v\n", name, err)
		}
		r.prog.finish()
	}
	r.rep.finish()
	if len(r.rep.Failures) > 0 {
		return r.rep, &FailedError{Failures: r.rep.Failures}
	}
	return r.rep, nil
}

// finish sets the top-level ratios and the table.
func (r *Report) finish() {
	if c := r.Ceiling; c != nil && c.CallCheck != nil {
		r.CallScopedRatio, r.CallScopedPlainRatio, r.CallInfoRatio = c.CallCheck.RatioCallID, c.CallCheck.RatioPlain, c.CallCheck.RatioCallInfo
	}
	if l := r.Latency; l != nil && l.CallCheckP99 != nil {
		r.CallScopedP99Ratio, r.CallScopedPlainP99Ratio, r.CallInfoP99Ratio = l.CallCheckP99.RatioCallID, l.CallCheckP99.RatioPlain, l.CallCheckP99.RatioCallInfo
	}
	if r.API != nil {
		r.APIRatio = r.API.Ratio
	}
	r.Rows = r.table()
}
