package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	var rep benchReport
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	sz := quickSizes
	switch c := rep.Ceiling; {
	case c == nil:
		t.Fatal("no ceiling")
	case c.Accepted != sz.CeilingN || c.Pipeline <= 0 || c.BareHTTP <= 0 || c.RawJetStream <= 0 || c.Writes <= 0 || c.WorkerCPU <= 0 ||
		c.ExecuteOnly <= 0 || c.ExecuteLedger <= 0:
		t.Errorf("ceiling = %+v, want %d accepted and every rate measured", c, sz.CeilingN)
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
		l.Floor.N != l.Worker.N || l.FloorLedger.N != l.Worker.N || l.Floor.P50 <= 0 {
		t.Errorf("latency = %+v", l)
	}
	if c := rep.Confirm; c == nil || c.Confirmed != sz.ConfirmAgents || c.Latency.N != sz.ConfirmAgents || c.Latency.P50 <= 0 {
		t.Errorf("confirmation = %+v, want %d confirmed", c, sz.ConfirmAgents)
	}
	if p := rep.Poller; p == nil || p.Agents != sz.PollAgents || p.Stats.RSS <= 0 || p.Stats.Sockets < sz.PollAgents || p.PolledEveryHold <= 0 {
		t.Errorf("poller = %+v", p)
	}
	md, _ := os.ReadFile(mdOut)
	svg, _ := os.ReadFile(svgOut)
	if !strings.Contains(string(md), "| measure |") || !strings.Contains(string(out), "| measure |") {
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
