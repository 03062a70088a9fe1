package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// benchSizes are the sizes of one `callcontrol bench` run.
type benchSizes struct {
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
	ScopeRounds   int           `json:"call_check_rounds"` // rounds of the call check's ranges (benchscope.go)
	profile       string        // directory for CPU profiles of the children ("" = none)
}

var (
	fullSizes = benchSizes{CeilingN: 5000, CeilingConc: 64, Levels: []int{16, 32, 64, 128, 256}, PerLevel: 16,
		SlowGateway: 50 * time.Millisecond, Rate: 1000, RateFor: 5 * time.Second,
		ConfirmAgents: 1000, PollAgents: 10000, PollHold: 10 * time.Second, ScopeRounds: 2}
	quickSizes = benchSizes{CeilingN: 300, CeilingConc: 16, Levels: []int{8, 32}, PerLevel: 4,
		SlowGateway: 50 * time.Millisecond, Rate: 500, RateFor: 600 * time.Millisecond,
		ConfirmAgents: 40, PollAgents: 200, PollHold: time.Second, ScopeRounds: 1}
)

// benchReport is everything one run measured; written as JSON by --json so
// runs of different commits can be compared.
type benchReport struct {
	Version    string         `json:"version"`
	Started    time.Time      `json:"started"`
	GoVersion  string         `json:"go_version"`
	CPUs       int            `json:"cpus"`
	Sizes      benchSizes     `json:"sizes"`
	Ceiling    *ceilingResult `json:"ceiling,omitempty"`
	Pipelining []pipeResult   `json:"pipelining,omitempty"`
	Latency    *latencyResult `json:"latency,omitempty"`
	Confirm    *confirmResult `json:"confirmation,omitempty"`
	Poller     *pollerResult  `json:"poller_scale,omitempty"`
	// What the call check costs (benchscope.go), set against the worker
	// with --skip-call-check in the same run: throughput at the ceiling
	// of commands with call_id (the call_scoped_ratio), of plain
	// commands, and of plain commands without call state (the call-info
	// query); and the same for the latency scenario's p99 (a factor: above
	// 1 is slower).
	CallScopedRatio         float64         `json:"call_scoped_ratio,omitempty"`
	CallScopedPlainRatio    float64         `json:"call_scoped_plain_ratio,omitempty"`
	CallInfoRatio           float64         `json:"call_info_ratio,omitempty"`
	CallScopedP99Ratio      float64         `json:"call_scoped_p99_ratio,omitempty"`
	CallScopedPlainP99Ratio float64         `json:"call_scoped_plain_p99_ratio,omitempty"`
	CallInfoP99Ratio        float64         `json:"call_info_p99_ratio,omitempty"`
	Rows                    []benchRow      `json:"table"`
	Failures                []string        `json:"failures,omitempty"`
	scenarios               map[string]bool // which ran
}

// benchRow is one line of the printed table.
type benchRow struct {
	Measure  string  `json:"measure"`
	Value    string  `json:"value"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

var benchScenarios = []string{"ceiling", "pipelining", "latency", "confirmation", "poller"}

// benchOutputs are the files a run writes ("" = not written).
type benchOutputs struct{ json, md, svg string }

// runBench measures what one worker and one poller carry, against
// baselines measured in the same run (see README "Performance").
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	sizes, want, out, err := benchParse(args, stdout)
	if err != nil {
		return err
	}
	rep := &benchReport{Version: buildVersion(), Started: time.Now().UTC(), GoVersion: runtime.Version(),
		CPUs: runtime.NumCPU(), Sizes: sizes, scenarios: want}
	prog := newProgress(stderr)
	steps := []struct {
		name string
		run  func(context.Context, benchSizes, *progress, *benchReport) error
	}{
		{"ceiling", benchCeiling}, {"pipelining", benchPipelining}, {"latency", benchLatency},
		{"confirmation", benchConfirm}, {"poller", benchPoller},
	}
	for _, st := range steps {
		if !want[st.name] {
			continue
		}
		if err := st.run(ctx, sizes, prog, rep); err != nil {
			prog.finish()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Failures = append(rep.Failures, st.name+": "+err.Error())
			fmt.Fprintf(stderr, "bench: %s: %v\n", st.name, err)
		}
		prog.finish()
	}
	if err := rep.write(stdout, out); err != nil {
		return err
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("bench: %d scenario(s) failed: %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
	}
	return nil
}

// benchParse reads the flags: the sizes, the scenarios to run and the
// output files.
func benchParse(args []string, stdout io.Writer) (benchSizes, map[string]bool, benchOutputs, error) {
	s := newSettings("bench", stdout)
	var (
		quick                bool
		only, profile        string
		out                  benchOutputs
		ceilingN, pollAgents int
	)
	s.fs.BoolVar(&quick, "quick", false, "small sizes (seconds instead of minutes): a smoke test, not a measurement")
	s.fs.StringVar(&only, "only", strings.Join(benchScenarios, ","), "scenarios to run: "+strings.Join(benchScenarios, ", "))
	output := s.group(groupOutput)
	s.fs.StringVar(&out.json, "json", "", "write the report as JSON to this file")
	s.fs.StringVar(&out.md, "md", "", "write the table as Markdown to this file")
	s.fs.StringVar(&out.svg, "svg", "", "write the chart (throughput vs in flight, latency percentiles) as SVG to this file")
	output()
	s.fs.IntVar(&ceilingN, "commands", 0, "commands of the ceiling run (0 = the size's default)")
	s.fs.IntVar(&pollAgents, "poller-agents", 0, "agents of the poller-scale run (0 = the size's default: 10000)")
	output = s.group(groupOutput)
	s.fs.StringVar(&profile, "profile", "", "write a 5 s CPU profile of the worker during the ceiling run into this directory")
	output()
	if err := s.parse(args); err != nil {
		return benchSizes{}, nil, out, err
	}
	sizes := fullSizes
	if quick {
		sizes = quickSizes
	}
	if ceilingN < 0 || pollAgents < 0 {
		return sizes, nil, out, fmt.Errorf("--commands, --poller-agents: must not be negative")
	}
	// Each command of the ceiling run needs an agent of its own (101..59999)
	// in each of its seven runs (bare HTTP, two floors, the call check's
	// four ranges), beside one per slot for each warm-up.
	if most := (59999 - 100 - scopeAgentCount(0, sizes.CeilingConc, sizes.ScopeRounds) - 2*sizes.CeilingConc) / 7; ceilingN > most {
		return sizes, nil, out, fmt.Errorf("--commands: at most %d (each needs an agent of its own, 101..59999, in each of 7 runs)", most)
	}
	if ceilingN > 0 {
		sizes.CeilingN = ceilingN
	}
	if pollAgents > 0 {
		sizes.PollAgents = pollAgents
	}
	sizes.profile = profile
	want := map[string]bool{}
	for _, sc := range strings.Split(only, ",") {
		if sc = strings.TrimSpace(sc); !slices.Contains(benchScenarios, sc) {
			return sizes, nil, out, fmt.Errorf("--only (CALLCONTROL_ONLY): unknown scenario %q; known: %s", sc, strings.Join(benchScenarios, ", "))
		}
		want[sc] = true
	}
	return sizes, want, out, nil
}

// write prints the table and writes the files out names.
func (r *benchReport) write(stdout io.Writer, out benchOutputs) error {
	if c := r.Ceiling; c != nil && c.CallCheck != nil {
		r.CallScopedRatio, r.CallScopedPlainRatio, r.CallInfoRatio = c.CallCheck.RatioCallID, c.CallCheck.RatioPlain, c.CallCheck.RatioCallInfo
	}
	if l := r.Latency; l != nil && l.CallCheckP99 != nil {
		r.CallScopedP99Ratio, r.CallScopedPlainP99Ratio, r.CallInfoP99Ratio = l.CallCheckP99.RatioCallID, l.CallCheckP99.RatioPlain, l.CallCheckP99.RatioCallInfo
	}
	r.Rows = r.table()
	md := r.markdown()
	fmt.Fprint(stdout, md)
	if err := writeOut(out.md, []byte(md)); err != nil {
		return err
	}
	if out.json != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := writeOut(out.json, append(b, '\n')); err != nil {
			return err
		}
	}
	return writeOut(out.svg, []byte(r.svg()))
}

func writeOut(path string, b []byte) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}

// progress draws one status line on a terminal: the scenario, a bar and a
// count. On anything else it prints a line per phase.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// set shows label with done of total (total 0: no bar).
func (p *progress) set(label string, done, total int) {
	if !p.tty {
		if label != p.label {
			fmt.Fprintf(p.w, "bench: %s\n", label)
			p.label = label
		}
		return
	}
	if label == p.label && done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.label, p.last, p.drawn = label, time.Now(), true
	const width = 30
	bar := strings.Repeat(" ", width)
	count := ""
	if total > 0 {
		n := min(width, done*width/total)
		bar = strings.Repeat("=", n) + strings.Repeat(" ", width-n)
		count = fmt.Sprintf(" %d/%d", done, total)
	}
	fmt.Fprintf(p.w, "\r\033[K%-34s [%s]%s", label, bar, count)
}

// finish ends the status line.
func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	p.label = ""
}
