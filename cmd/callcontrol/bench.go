package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/bench"
	"github.com/callcontrol/callcontrol/internal/natsconn"
	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchOutputs are the files a run writes ("" = not written).
type benchOutputs struct{ json, md, svg string }

// runBench measures what one worker and one poller carry, against
// baselines measured in the same run (see README "Performance" and
// internal/bench).
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, out, err := benchParse(args, stdout)
	if err != nil {
		return err
	}
	if cfg.Executable, err = os.Executable(); err != nil {
		return err
	}
	rep, err := bench.Run(ctx, cfg)
	var failed *bench.FailedError
	if err != nil && !errors.As(err, &failed) {
		return err
	}
	if werr := writeBenchReport(rep, stdout, out); werr != nil {
		return werr
	}
	return err
}

// benchParse reads the flags: the sizes, the scenarios to run and the
// output files.
func benchParse(args []string, stdout io.Writer) (bench.Config, benchOutputs, error) {
	s := newSettings("bench", stdout)
	var (
		quick                bool
		only, profile        string
		out                  benchOutputs
		ceilingN, pollAgents int
	)
	s.fs.BoolVar(&quick, "quick", false, "small sizes (seconds instead of minutes): a smoke test, not a measurement")
	s.fs.StringVar(&only, "only", strings.Join(bench.Scenarios, ","), "scenarios to run: "+strings.Join(bench.Scenarios, ", "))
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
		return bench.Config{}, out, err
	}
	cfg := benchConfig(profile)
	if quick {
		cfg.Sizes = bench.QuickSizes()
	}
	if ceilingN < 0 || pollAgents < 0 {
		return cfg, out, fmt.Errorf("--commands, --poller-agents: must not be negative")
	}
	if most := cfg.Sizes.MaxCeilingCommands(); ceilingN > most {
		return cfg, out, fmt.Errorf("--commands: at most %d (each needs an agent of its own, 101..59999, in each of 7 runs)", most)
	}
	if ceilingN > 0 {
		cfg.Sizes.CeilingN = ceilingN
	}
	if pollAgents > 0 {
		cfg.Sizes.PollAgents = pollAgents
	}
	for _, sc := range strings.Split(only, ",") {
		if sc = strings.TrimSpace(sc); !slices.Contains(bench.Scenarios, sc) {
			return cfg, out, fmt.Errorf("--only (CALLCONTROL_ONLY): unknown scenario %q; known: %s", sc, strings.Join(bench.Scenarios, ", "))
		}
		cfg.Scenarios = append(cfg.Scenarios, sc)
	}
	return cfg, out, nil
}

// benchConfig is the full-size run wired to this binary's NATS server,
// simulator and session registry.
func benchConfig(profile string) bench.Config {
	return bench.Config{
		Sizes: bench.FullSizes(), Version: buildVersion(), ProfileDir: profile, Progress: stderr,
		StartNATS: func(listen, dir string) (*natsembed.Server, error) { return startNATS(listen, dir, false) }, StartGateway: benchGateway,
		Connect: func(url string) (*nats.Conn, jetstream.JetStream, error) {
			nf := natsFlags{cfg: natsconn.Config{URL: url}}
			return nf.connect("bench")
		},
	}
}

// benchGateway starts a simulator with cfg on a loopback port, over HTTPS.
func benchGateway(cfg gatewaysim.Config) (*bench.Gateway, error) {
	sf := simFlags{listen: "127.0.0.1:0", cfg: cfg}
	srv, err := sf.start()
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	return &bench.Gateway{Sim: srv.Sim(), URL: srv.URL(), CertPEM: srv.CertPEM(),
		Stop: sync.OnceValue(func() error { stop(); return <-done })}, nil
}

// writeBenchReport prints the table and writes the files out names.
func writeBenchReport(rep *bench.Report, stdout io.Writer, out benchOutputs) error {
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if err := writeOut(out.md, []byte(md)); err != nil {
		return err
	}
	if out.json != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := writeOut(out.json, append(b, '\n')); err != nil {
			return err
		}
	}
	return writeOut(out.svg, []byte(rep.SVG()))
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
