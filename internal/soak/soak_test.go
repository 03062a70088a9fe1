//go:build soak

package soak

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Settings of the processes under test, and of the end of the run.
const (
	confirmWithin = 5 * time.Second
	defaultTTL    = 30 * time.Second // the worker's --default-ttl (its default)
	maxClockSkew  = 5 * time.Second  // the worker's --max-clock-skew (its default)
	resultWait    = 2 * time.Minute  // how long the end waits for the last results
	pendingWait   = time.Minute      // and then for the last confirmations
)

// soakConfig reads SEED (default: a fresh seed from the clock) and
// SOAK_DURATION (default 2m).
func soakConfig(t *testing.T) (int64, time.Duration) {
	seed := time.Now().UnixNano() % 1_000_000_000
	if v := os.Getenv("SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("SEED=%q: must be an integer", v)
		}
		seed = n
	}
	d := 2 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 10*time.Second {
			t.Fatalf("SOAK_DURATION=%q: must be a duration of at least 10s, e.g. 2m", v)
		}
	}
	return seed, d
}

func TestSoak(t *testing.T) {
	seed, duration := soakConfig(t)
	soak(t, seed, duration)
}

// regressionSeeds are the seeds of runs that found a violation, each run
// again (1 minute) after its fix: 547594266 released a held call's party
// with a plain command pinned, by a dead poller's state, to a call that
// had ended (the worker trusted call state for 5 s then); 808152682
// failed a taken-over command "no_session" whose first delivery's request
// the gateway had executed (the outcome is unknown; it also found a call
// that began 0.3 ms before a request arrived, the window no check closes).
var regressionSeeds = []int64{547594266, 808152682}

func TestSoakRegressions(t *testing.T) {
	if os.Getenv("SEED") != "" {
		t.Skip("SEED replays one schedule: TestSoak")
	}
	for _, seed := range regressionSeeds {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) { soak(t, seed, time.Minute) })
	}
}

func soak(t *testing.T, seed int64, duration time.Duration) {
	t.Logf("soak seed=%d (replay: SEED=%d make soak)", seed, seed)
	sched := newSchedule(seed, duration)
	t.Logf("schedule %s: %d ops at %d/s over %s, %d+%d faults, redial %s; %s", sched.fingerprint(), len(sched.Ops), sched.Rate,
		duration, len(sched.Lanes[0]), len(sched.Lanes[1]), sched.Redial, sched.summary())

	dir, err := os.MkdirTemp("", fmt.Sprintf("callcontrol-soak-%d-", seed))
	if err != nil {
		t.Fatal(err)
	}
	keep := os.Getenv("SOAK_KEEP") != ""
	t.Cleanup(func() {
		if keep || t.Failed() {
			t.Logf("logs, history.json and the JetStream store kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), duration+15*time.Minute)
	defer cancel()

	r, stop := setUp(ctx, t, dir, seed, sched)
	defer stop()

	h := History{Seed: seed, Started: time.Now()}
	r.start = h.Started
	drive(ctx, r, sched)
	t.Logf("generator done after %s: %d messages published; faults %d", time.Since(h.Started).Round(time.Second), r.published.Load(), len(r.faults))

	// The end: everything healthy again, then wait for the stragglers.
	r.sim.sim.SetFaults(gatewaysim.Faults{})
	r.sim.slow.Store(0)
	missing := r.waitResults(ctx, resultWait)
	pending := r.waitPending(ctx, pendingWait+confirmWithin)
	t.Logf("end: %d commands without a result after %s, %d confirmations pending", len(missing), resultWait, pending)
	if len(missing) > 0 {
		t.Logf("first missing results: %v", missing[:min(len(missing), 10)])
	}

	r.mu.Lock()
	h.Commands, h.Faults = append([]Command(nil), r.cmds...), append([]Fault(nil), r.faults...)
	r.mu.Unlock()
	h.Requests = r.sim.sim.Disconnects()
	if err := r.settle(ctx, &h, defaultTTL, maxClockSkew); err != nil {
		t.Fatalf("reading the streams back: %v", err)
	}
	for _, p := range r.procs {
		r.l.scrape(p)
	}
	stop() // graceful stop of the processes: their last lines are part of the logs
	h.Metrics = r.l.metrics
	h.Logs = r.l.logs.all()
	h.Secrets = append(r.secrets, r.sim.secrets()...)
	h.Finished = time.Now()
	if b, err := json.Marshal(h); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "history.json"), b, 0o600)
	}

	t.Log(numbers(r, &h))
	for _, c := range r.crashes {
		t.Errorf("process trouble: %s", c)
	}
	rep := Check(h)
	t.Logf("check:\n%s", rep.Table())
	if len(rep.Violations) > 0 || len(r.crashes) > 0 {
		t.Errorf("%d violations, %d process troubles; soak seed=%d (replay: SEED=%d SOAK_DURATION=%s make soak)",
			len(rep.Violations), len(r.crashes), seed, seed, duration)
	}
}

// setUp builds the binary and starts NATS, the simulator, the agents and
// the processes. stop ends the processes, the simulator and NATS.
func setUp(ctx context.Context, t *testing.T, dir string, seed int64, sched schedule) (*runner, func()) {
	t.Helper()
	bin, err := buildBinary(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logSink{dir: dir}
	ns, err := startNATS(dir)
	if err != nil {
		t.Fatal(err)
	}
	// AUTHMODE 2 with a GUID rotated every 5 s; a GUID stays valid 60 s,
	// longer than a dead poller's agents wait to be taken over (the poll
	// lease, 30 s) plus a restart, and the gateway's 2-minute no-poll
	// sign-out.
	sim, err := startSim(dir, gatewaysim.Config{AuthMode: 2, GUIDInterval: 5 * time.Second, GUIDTimeout: time.Minute,
		NoPollSignOut: 2 * time.Minute, RedialAfter: sched.Redial})
	if err != nil {
		ns.stop()
		t.Fatal(err)
	}
	r := &runner{seed: seed, nats: ns, sim: sim, pubs: map[int]pubMsg{}, dlqSeen: map[string]bool{}, replays: map[string]int{},
		l: &launcher{bin: bin, env: childEnv(), logs: logs}}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		r.mu.Lock()
		for _, p := range r.procs {
			p.intended = true
		}
		r.mu.Unlock()
		var g errgroup.Group
		for _, p := range r.procs {
			g.Go(func() error { p.signal(syscall.SIGTERM); return nil })
		}
		_ = g.Wait()
		if r.gw != nil {
			r.gw.Close()
		}
		if r.nc != nil {
			r.nc.Close()
		}
		sim.close()
		ns.stop()
	}
	fail := func(err error) { stop(); t.Fatal(err) }
	if r.nc, err = nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("soak")); err != nil {
		fail(err)
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		fail(err)
	}
	if err := topology.Provision(ctx, r.js, topology.Config{Replicas: 1, Workers: worker.DefaultConfig().Topology()}, topology.All); err != nil {
		fail(err)
	}
	pool := sim.srv.RootCAs()
	if r.gw, err = gateway.New(gateway.Config{BaseURL: sim.url(), RootCAs: pool, MaxConns: 16}); err != nil {
		fail(err)
	}
	r.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for a := firstAgent; a < firstAgent+numAgents; a++ {
		if err := r.signIn(ctx, a); err != nil {
			fail(err)
		}
		if _, err := sim.sim.StartCall(a, "5550"+strconv.Itoa(a)); err != nil {
			fail(err)
		}
	}
	common := []string{"--nats-url", ns.url(), "--gateway-url", sim.url(), "--gateway-ca", sim.caFile, "--gateway-timeout", "2s"}
	for i := 1; i <= 2; i++ {
		r.procs = append(r.procs, &proc{name: fmt.Sprintf("worker-%d", i), role: "worker", args: append(slicesClone(common),
			"--confirm-within", confirmWithin.String(), "--lease-ttl", "5s", "--ack-wait", "10s")})
	}
	for i := 1; i <= 2; i++ {
		r.procs = append(r.procs, &proc{name: fmt.Sprintf("poller-%d", i), role: "poller", args: slicesClone(common)})
	}
	for _, p := range r.procs {
		if err := r.l.start(ctx, p); err != nil {
			fail(err)
		}
		go r.watch(ctx, p, p.done)
	}
	// Every agent polled before the first command, so that the call
	// state is there from the start.
	deadline := time.Now().Add(60 * time.Second)
	for a := firstAgent; a < firstAgent+numAgents; a++ {
		for sim.sim.Polls(a) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return r, stop
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// drive executes the schedule: the ops in order at their times, and each
// fault lane in order at its times, until all are done.
func drive(ctx context.Context, r *runner, sched schedule) {
	gctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go r.followDLQ(gctx)
	var g errgroup.Group
	g.Go(func() error {
		for i, o := range sched.Ops {
			sleepCtx(ctx, time.Until(r.start.Add(o.At)))
			if ctx.Err() != nil {
				return nil
			}
			r.exec(ctx, i, o)
		}
		return nil
	})
	for _, lane := range sched.Lanes {
		g.Go(func() error {
			for _, f := range lane {
				sleepCtx(ctx, time.Until(r.start.Add(f.At)))
				if ctx.Err() != nil {
					return nil
				}
				r.inject(ctx, f)
			}
			return nil
		})
	}
	_ = g.Wait()
	r.async.Wait() // the last dlq replays
}

// numbers summarises a run.
func numbers(r *runner, h *History) string {
	kinds, valid := map[string]int{}, 0
	for _, c := range h.Commands {
		kinds[c.Kind]++
		if c.Valid {
			valid++
		}
	}
	status := map[string]int{}
	for _, res := range h.Results {
		status[string(res.Value.Status)]++
	}
	conf := map[string]int{}
	for _, c := range h.Confirmations {
		conf[string(c.Value.Status)]++
	}
	faults := map[string]int{}
	for _, f := range h.Faults {
		faults[f.Kind]++
	}
	executed := 0
	for _, d := range h.Requests {
		if d.Executed {
			executed++
		}
	}
	st := r.sim.sim.Stats()
	var b strings.Builder
	fmt.Fprintf(&b, "run: %s, seed %d\n", h.Finished.Sub(h.Started).Round(time.Second), h.Seed)
	fmt.Fprintf(&b, "commands published: %d (%d valid) by kind %s\n", len(h.Commands), valid, sortedMap(kinds))
	fmt.Fprintf(&b, "results: %d %s; confirmations: %d %s\n", len(h.Results), sortedMap(status), len(h.Confirmations), sortedMap(conf))
	fmt.Fprintf(&b, "gateway: %d disconnect requests, %d executed, %d overlaps, %d concurrent polls, %d signed out for no poll, %d redials (%d released on a redial), %d call-info queries\n",
		len(h.Requests), executed, st.Overlaps, st.ConcurrentPolls, st.SignedOutByTimeout, st.Redials, st.ExecutedOnRedial, st.CallInfoQueries)
	fmt.Fprintf(&b, "faults: %d %s\n", len(h.Faults), sortedMap(faults))
	fmt.Fprintf(&b, "dlq replays: %s\n", sortedMap(r.replays))
	if w, err := Windows(h.Metrics); err != nil {
		fmt.Fprintf(&b, "call check window: %v\n", err)
	} else {
		fmt.Fprintf(&b, "%s\n", w)
	}
	fmt.Fprintf(&b, "recorded: %d log lines, %d stream messages, %d metrics pages, %d secrets", len(h.Logs), len(h.Streams), len(h.Metrics), len(h.Secrets))
	return b.String()
}

func sortedMap(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}
