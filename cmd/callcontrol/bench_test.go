package main

import (
	"encoding/json"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/bench"
	"github.com/callcontrol/callcontrol/worker"
)

// callcontrol bench --quick runs every scenario end to end with child
// worker and poller processes, and its report holds every measurement.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes for about a minute")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	jsonOut, svgOut, mdOut := filepath.Join(dir, "r.json"), filepath.Join(dir, "c.svg"), filepath.Join(dir, "r.md")
	out, err := exec.Command(bin, "bench", "--quick", "--json", jsonOut, "--svg", svgOut, "--md", mdOut).CombinedOutput()
	if err != nil {
		t.Fatalf("bench --quick: %v\n%s", err, out)
	}
	var rep bench.Report
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	sz := bench.QuickSizes()
	switch c := rep.Ceiling; {
	case c == nil:
		t.Fatal("no ceiling")
	case c.Accepted != sz.CeilingN || c.Pipeline <= 0 || c.BareHTTP <= 0 || c.RawJetStream <= 0 || c.Writes <= 0 || c.WorkerCPU <= 0 ||
		c.ExecuteOnly <= 0 || c.ExecuteLedger <= 0:
		t.Errorf("ceiling = %+v, want %d accepted and every rate measured", c, sz.CeilingN)
	}
	if c := rep.Ceiling; c != nil {
		if cc := c.CallCheck; cc == nil || cc.Plain <= 0 || cc.CallID <= 0 || cc.Skip <= 0 || cc.CallInfo <= 0 ||
			c.WorkerCPUCallID <= 0 || c.WorkerCPUSkip <= 0 || c.WorkerCPUCallInfo <= 0 {
			t.Errorf("ceiling call check = %+v (CPU %d/%d/%d µs), want every range measured", cc, c.WorkerCPUCallID, c.WorkerCPUSkip, c.WorkerCPUCallInfo)
		}
		if segs := c.CallCheckSegments; len(segs) != sz.CallCheckSegments() || segs[0].Elapsed <= 0 || segs[0].Slowest <= 0 ||
			segs[0].Slowest > segs[0].Elapsed {
			t.Errorf("ceiling call check segments = %+v, want %d, each with its elapsed time and slowest command", segs, sz.CallCheckSegments())
		}
	}
	// The call check's figures, top level as the issue names them: every
	// one measured (quick runs are too short for their values to mean more).
	for name, v := range map[string]float64{"call_scoped_ratio": rep.CallScopedRatio, "call_scoped_plain_ratio": rep.CallScopedPlainRatio,
		"call_info_ratio": rep.CallInfoRatio, "call_scoped_p99_ratio": rep.CallScopedP99Ratio,
		"call_scoped_plain_p99_ratio": rep.CallScopedPlainP99Ratio, "call_info_p99_ratio": rep.CallInfoP99Ratio} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a ratio measured (> 0, finite)", name, v)
		}
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top["call_scoped_ratio"].(float64); !ok {
		t.Errorf("results.json has no top-level call_scoped_ratio")
	}
	// The HTTP door against the NATS path, in the same run: every command
	// of both paths accepted and confirmed, and the ratio measured.
	if a, n := rep.API, bench.APICommands(sz); a == nil || a.Commands != n || a.Concurrency != sz.CeilingConc || a.API <= 0 || a.NATS <= 0 ||
		a.Accepted != 2*n || a.Confirmed != 2*n {
		t.Errorf("api = %+v, want %d commands per path, each accepted and confirmed", a, n)
	}
	if v := rep.APIRatio; !(v > 0) || math.IsInf(v, 0) {
		t.Errorf("api_ratio = %v, want a ratio measured (> 0, finite)", v)
	}
	if _, ok := top["api_ratio"].(float64); !ok {
		t.Errorf("results.json has no top-level api_ratio")
	}
	if len(rep.Pipelining) != len(sz.Levels) {
		t.Fatalf("pipelining = %+v, want levels %v", rep.Pipelining, sz.Levels)
	}
	for i, p := range rep.Pipelining {
		last := i == len(rep.Pipelining)-1 // the only level with the floor
		if p.InFlight != sz.Levels[i] || p.Ratio <= 0 || p.Ratio > 1.05 || p.BareHTTP <= 0 || p.Whole <= 0 || p.PeakRSS <= 0 ||
			(p.ExecuteOnly > 0) != last || (p.ExecuteLedger > 0) != last {
			t.Errorf("pipelining[%d] = %+v", i, p)
		}
	}
	if l := rep.Latency; l == nil || l.Worker.N == 0 || l.Raw.N != l.Worker.N || l.Worker.P50 <= 0 || l.Raw.P99 < l.Raw.P50 ||
		l.Floor.N != l.Worker.N || l.FloorLedger.N != l.Worker.N || l.Floor.P50 <= 0 ||
		l.CallID.N != l.Worker.N || l.Skip.N != l.Worker.N || l.CallInfo.N != l.Worker.N || l.CallID.P50 <= 0 || l.Skip.P50 <= 0 ||
		l.CallInfo.P50 <= 0 || l.CallCheckP99 == nil {
		t.Errorf("latency = %+v", l)
	}
	// The window no call check closes, as the checked worker observed it:
	// one observation per accepted command of each range it covers.
	if l := rep.Latency; l != nil {
		if w := l.CheckWindow; w == nil || w.CallInfo.N != uint64(l.CallInfo.N) || w.AfterCheck.N != uint64(l.Worker.N+l.CallID.N) ||
			w.CallInfo.P50 <= 0 || w.CallInfo.P99 < w.CallInfo.P50 || w.AfterCheck.P50 <= 0 {
			t.Errorf("latency call check window = %+v, want %d call-info and %d fresh-state observations", w, l.CallInfo.N, l.Worker.N+l.CallID.N)
		}
	}
	if c := rep.Confirm; c == nil || c.Confirmed != sz.ConfirmAgents || c.Latency.N != sz.ConfirmAgents || c.Latency.P50 <= 0 {
		t.Errorf("confirmation = %+v, want %d confirmed", c, sz.ConfirmAgents)
	}
	if p := rep.Poller; p == nil || p.Agents != sz.PollAgents || p.Stats.RSS <= 0 || p.Stats.Sockets < sz.PollAgents || p.PolledEveryHold <= 0 {
		t.Errorf("poller = %+v", p)
	}
	md, _ := os.ReadFile(mdOut)
	svg, _ := os.ReadFile(svgOut)
	if !strings.Contains(string(md), "| measure |") || !strings.Contains(string(out), "| measure |") ||
		!strings.Contains(string(md), "(call_scoped_ratio)") || !strings.Contains(string(md), "(call_info_p99_ratio)") ||
		!strings.Contains(string(md), "(api_ratio)") {
		t.Errorf("no table in the Markdown file or the output:\n%s", out)
	}
	if !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "<polyline") {
		t.Errorf("chart is not an SVG with a line:\n%.300s", svg)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{{"--only", "nope"}, {"--commands", "-1"}, {"--commands", "20000"}} {
		err := run(t.Context(), append([]string{"bench"}, args...), os.Stdout)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("bench %v: err = %v, want one naming %s", args, err, args[0])
		}
	}
}

// --skip-call-check (the bench's baseline of the call check) sets
// worker.Config.SkipCallCheck, from the flag and the environment, is left
// out of the usage text and is warned about when set.
func TestBenchSkipCallCheckFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want bool
	}{{nil, "", false}, {[]string{"--skip-call-check"}, "", true}, {nil, "true", true}} {
		t.Setenv("CALLCONTROL_SKIP_CALL_CHECK", tc.env)
		if tc.env == "" {
			os.Unsetenv("CALLCONTROL_SKIP_CALL_CHECK")
		}
		var usage strings.Builder
		s := newSettings("worker", &usage)
		var c worker.Config
		workerFlags(s, &c)
		if err := s.parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if c.SkipCallCheck != tc.want {
			t.Errorf("args %v, env %q: SkipCallCheck = %v, want %v", tc.args, tc.env, c.SkipCallCheck, tc.want)
		}
		if warned := slices.ContainsFunc(riskySettings(s), func(r risk) bool { return r.flag == "--skip-call-check" }); warned != tc.want {
			t.Errorf("args %v, env %q: warned = %v, want %v", tc.args, tc.env, warned, tc.want)
		}
		s.usage()
		if u := usage.String(); strings.Contains(u, "skip-call-check") || !strings.Contains(u, "call-state-max-age") {
			t.Errorf("usage shows the hidden flag, or not the others:\n%s", u)
		}
	}
}

// httpOK reports whether url answers 200 OK.
func httpOK(url string) (bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// freePort returns a loopback address that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
