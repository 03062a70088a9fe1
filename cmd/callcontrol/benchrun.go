package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// The scenarios of `callcontrol bench`. Each builds its own benchEnv, so
// that no run inherits another's streams, buckets or connections.

type ceilingResult struct {
	Commands       int     `json:"commands"`
	Concurrency    int     `json:"concurrency"`
	Pipeline       float64 `json:"pipeline_cmd_per_s"`
	BareHTTP       float64 `json:"bare_http_req_per_s"`
	RawJetStream   float64 `json:"raw_jetstream_msg_per_s"`
	RatioHTTP      float64 `json:"ratio_http"`
	RatioJetStream float64 `json:"ratio_jetstream"`
	Writes         float64 `json:"worker_writes_alone_cmd_per_s"` // see writeFloor
	RatioWrites    float64 `json:"ratio_writes"`
	WorkerCPU      int64   `json:"worker_cpu_us_per_cmd"`
	ServerCPU      int64   `json:"nats_and_gateway_cpu_us_per_cmd"` // this process: NATS server, simulator, publisher
	Accepted       int     `json:"accepted"`
}

type pipeResult struct {
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
}

type percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
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

func percentilesOf(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	slices.Sort(d)
	at := func(q int) time.Duration { return d[min(len(d)-1, len(d)*q/100)] }
	return percentiles{N: len(d), P50: at(50), P90: at(90), P99: at(99), Max: d[len(d)-1]}
}

type latencyResult struct {
	Rate     int         `json:"rate_per_s"`
	Worker   percentiles `json:"publish_to_post"`
	Raw      percentiles `json:"raw_publish_to_consume"`
	RatioP50 float64     `json:"ratio_p50"`
	RatioP99 float64     `json:"ratio_p99"`
}

type confirmResult struct {
	Agents      int           `json:"agents"`
	Confirmed   int           `json:"confirmed"`
	Unconfirmed int           `json:"unconfirmed"`
	Latency     percentiles   `json:"event_to_confirmation"`
	Target      time.Duration `json:"target_p99_ns"`
}

type pollerResult struct {
	Agents          int           `json:"agents"`
	Hold            time.Duration `json:"hold_ns"`
	Window          time.Duration `json:"window_ns"`
	Cores           float64       `json:"cpu_cores"`
	Stats           procStats     `json:"process"`
	PolledEveryHold float64       `json:"polled_every_hold"` // fraction of agents polled in the window
}

func benchCeiling(ctx context.Context, sz benchSizes, prog *progress, rep *benchReport) error {
	n, conc := sz.CeilingN, sz.CeilingConc
	env, err := newBenchEnv(ctx, gatewaysim.Config{AuthMode: 1}, conc)
	if err != nil {
		return err
	}
	defer env.close()
	pipeAgents, httpAgents, warmAgents := agentRange(101, n), agentRange(101+n, n), agentRange(101+2*n, conc)
	prog.set("ceiling: signing agents in", 0, 0)
	guids, err := env.signIn(ctx, slices.Concat(pipeAgents, httpAgents, warmAgents), true)
	if err != nil {
		return err
	}
	w, err := env.start(ctx, "worker", "--concurrency", strconv.Itoa(conc))
	if err != nil {
		return err
	}
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()
	if err := env.warmUp(ctx, results, warmAgents); err != nil {
		return err
	}

	prog.set("ceiling: bare HTTP loop", 0, 0)
	start, done, err := bareHTTPLoop(ctx, env.gw, guids, httpAgents, conc)
	if err != nil {
		return err
	}
	bare := perSecond(start, done)
	prog.set("ceiling: raw JetStream consume+ack", 0, 0)
	raw, err := rawConsumeAck(ctx, env.js, n, conc)
	if err != nil {
		return err
	}
	prog.set("ceiling: the worker's JetStream writes alone", 0, 0)
	floor, err := writeFloor(ctx, env.js, n, conc)
	if err != nil {
		return err
	}
	s0, err := w.stats()
	if err != nil {
		return err
	}
	if sz.profile != "" {
		go w.profile(filepath.Join(sz.profile, "worker-ceiling.pprof"), 5*time.Second)
	}
	accepted0, self0 := results.status("accepted"), selfCPU()
	elapsed, err := env.pipeline(ctx, prog, "ceiling: pipeline", results, pipeAgents, 0, nil)
	if err != nil {
		return err
	}
	self := selfCPU() - self0
	s1, err := w.stats()
	if err != nil {
		return err
	}
	pipe := float64(n) / elapsed.Seconds()
	rep.Ceiling = &ceilingResult{Commands: n, Concurrency: conc, Pipeline: pipe, BareHTTP: bare, RawJetStream: raw,
		RatioHTTP: pipe / bare, RatioJetStream: pipe / raw, Writes: floor, RatioWrites: pipe / floor, WorkerCPU: (s1.CPU - s0.CPU).Microseconds() / int64(n),
		ServerCPU: self.Microseconds() / int64(n),
		Accepted:  results.status("accepted") - accepted0}
	return nil
}

func benchPipelining(ctx context.Context, sz benchSizes, prog *progress, rep *benchReport) error {
	maxLevel := slices.Max(sz.Levels)
	env, err := newBenchEnv(ctx, gatewaysim.Config{AuthMode: 1, Latency: sz.SlowGateway}, maxLevel)
	if err != nil {
		return err
	}
	defer env.close()
	total := 0
	for _, m := range sz.Levels {
		total += m * sz.PerLevel
	}
	warmAgents := agentRange(101, maxLevel)
	prog.set("pipelining: signing agents in", 0, 0)
	guids, err := env.signIn(ctx, slices.Concat(warmAgents, agentRange(101+maxLevel, total)), true)
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
		w, err := env.start(ctx, "worker", "--concurrency", strconv.Itoa(m))
		if err != nil {
			return err
		}
		if err := env.warmUp(ctx, results, warmAgents[:m]); err != nil {
			return err
		}
		for _, a := range warmAgents[:m] { // back on a call for the next level
			if err := env.call(a); err != nil {
				return err
			}
		}
		n := m * sz.PerLevel
		s0, err := w.stats()
		if err != nil {
			return err
		}
		elapsed, err := env.pipeline(ctx, prog, fmt.Sprintf("pipelining: %d in flight", m), results, agentRange(next, n), 0, nil)
		if err != nil {
			return err
		}
		s1, err := w.stats()
		if err != nil {
			return err
		}
		w.stop()
		next += n
		agents := agentRange(next-n, n)
		ids := make([]string, n)
		for i, a := range agents {
			ids[i] = benchCommandID("run", a)
		}
		got, ideal := steadyRate(seenAt(results.seen(), ids)), float64(m)/sz.SlowGateway.Seconds()
		prog.set(fmt.Sprintf("pipelining: bare HTTP, %d in flight", m), 0, 0)
		for _, a := range agents { // back on a call for the baseline
			if err := env.call(a); err != nil {
				return err
			}
		}
		_, done, err := bareHTTPLoop(ctx, env.gw, guids, agents, m)
		if err != nil {
			return err
		}
		bare := steadyRate(done)
		rep.Pipelining = append(rep.Pipelining, pipeResult{InFlight: m, Commands: n, PerS: got, Whole: float64(n) / elapsed.Seconds(),
			Ideal: ideal, Ratio: got / ideal, BareHTTP: bare, RatioHTTP: got / bare,
			PeakRSS: s1.PeakRSS, WorkerCPU: (s1.CPU - s0.CPU).Microseconds() / int64(n)})
	}
	return nil
}

func benchLatency(ctx context.Context, sz benchSizes, prog *progress, rep *benchReport) error {
	const conc = 64
	n := int(float64(sz.Rate) * sz.RateFor.Seconds())
	every := time.Second / time.Duration(sz.Rate)
	env, err := newBenchEnv(ctx, gatewaysim.Config{AuthMode: 1}, 8)
	if err != nil {
		return err
	}
	defer env.close()
	agents, warmAgents := agentRange(101, n), agentRange(101+n, conc)
	prog.set("latency: signing agents in", 0, 0)
	if _, err := env.signIn(ctx, slices.Concat(agents, warmAgents), true); err != nil {
		return err
	}
	if _, err := env.start(ctx, "worker", "--concurrency", strconv.Itoa(conc)); err != nil {
		return err
	}
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()
	if err := env.warmUp(ctx, results, warmAgents); err != nil {
		return err
	}
	prog.set(fmt.Sprintf("latency: raw JetStream at %d/s", sz.Rate), 0, 0)
	raw, err := rawLatency(ctx, env.js, n, every)
	if err != nil {
		return err
	}
	sent := make([]time.Time, n)
	if _, err := env.pipeline(ctx, prog, fmt.Sprintf("latency: worker at %d/s", sz.Rate), results, agents, every,
		func(i int, t time.Time) { sent[i] = t }); err != nil {
		return err
	}
	arrived := firstArrivals(env.sim.sim)
	lat := make([]time.Duration, 0, n)
	for i, a := range agents {
		if at, ok := arrived[a]; ok {
			lat = append(lat, at.Sub(sent[i]))
		}
	}
	if len(lat) < n {
		return fmt.Errorf("%d of %d commands reached the gateway", len(lat), n)
	}
	r := &latencyResult{Rate: sz.Rate, Worker: percentilesOf(lat), Raw: percentilesOf(raw)}
	r.RatioP50 = float64(r.Worker.P50) / float64(r.Raw.P50)
	r.RatioP99 = float64(r.Worker.P99) / float64(r.Raw.P99)
	rep.Latency = r
	return nil
}

func benchConfirm(ctx context.Context, sz benchSizes, prog *progress, rep *benchReport) error {
	n := sz.ConfirmAgents
	env, err := newBenchEnv(ctx, gatewaysim.Config{AuthMode: 2}, 8)
	if err != nil {
		return err
	}
	defer env.close()
	agents := agentRange(101, n)
	prog.set("confirmation: signing agents in", 0, 0)
	if _, err := env.signIn(ctx, agents, true); err != nil {
		return err
	}
	if _, err := env.start(ctx, "poller", "--gateway-max-conns", strconv.Itoa(n+16)); err != nil {
		return err
	}
	if _, err := env.start(ctx, "worker", "--concurrency", "64"); err != nil {
		return err
	}
	if err := env.allPolled(ctx, prog, "confirmation: first polls", agents); err != nil {
		return err
	}
	confs, err := env.tap(events.SubjectConfirmations + ".>")
	if err != nil {
		return err
	}
	defer confs.stop()
	results, err := env.tap(events.SubjectResults + ".>")
	if err != nil {
		return err
	}
	defer results.stop()
	every := time.Second / time.Duration(max(1, sz.Rate/5))
	if _, err := env.pipeline(ctx, prog, "confirmation: disconnects", results, agents, every, nil); err != nil {
		return err
	}
	if err := waitProgress(ctx, prog, "confirmation: confirmations", 2*time.Minute, n, confs.count); err != nil {
		return err
	}
	arrived := firstArrivals(env.sim.sim)
	seen := confs.seen()
	lat := make([]time.Duration, 0, n)
	for _, a := range agents {
		if t, ok := seen[benchCommandID("run", a)]; ok {
			lat = append(lat, t.Sub(arrived[a]))
		}
	}
	gap := poller.DefaultConfig().PollGap
	rep.Confirm = &confirmResult{Agents: n, Confirmed: confs.status(string(events.ConfirmationConfirmed)),
		Unconfirmed: confs.count() - confs.status(string(events.ConfirmationConfirmed)),
		Latency:     percentilesOf(lat), Target: 50*time.Millisecond + gap}
	return nil
}

func benchPoller(ctx context.Context, sz benchSizes, prog *progress, rep *benchReport) error {
	n := sz.PollAgents
	env, err := newBenchEnv(ctx, gatewaysim.Config{AuthMode: 2, PollHold: sz.PollHold}, 64)
	if err != nil {
		return err
	}
	defer env.close()
	agents := agentRange(101, n)
	prog.set(fmt.Sprintf("poller: signing %d agents in", n), 0, 0)
	if _, err := env.signIn(ctx, agents, false); err != nil {
		return err
	}
	p, err := env.start(ctx, "poller", "--gateway-max-conns", strconv.Itoa(n+16))
	if err != nil {
		return err
	}
	if err := env.allPolled(ctx, prog, "poller: first polls", agents); err != nil {
		return err
	}
	// Every agent must be polled again within one hold, the pause after an
	// empty poll and a second of slack.
	window := sz.PollHold + poller.DefaultConfig().PollGap + time.Second
	polls := func() []int64 {
		c := make([]int64, n)
		for i, a := range agents {
			c[i] = env.sim.sim.Polls(a)
		}
		return c
	}
	s0, err := p.stats()
	if err != nil {
		return err
	}
	p0, start := polls(), time.Now()
	prog.set(fmt.Sprintf("poller: idle-polling %d agents", n), 0, 0)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window): // a measurement window, not a synchronisation
	}
	s1, err := p.stats()
	if err != nil {
		return err
	}
	elapsed, p1 := time.Since(start), polls()
	again := 0
	for i := range p1 {
		if p1[i] > p0[i] {
			again++
		}
	}
	rep.Poller = &pollerResult{Agents: n, Hold: sz.PollHold, Window: elapsed,
		Cores: (s1.CPU - s0.CPU).Seconds() / elapsed.Seconds(), Stats: s1, PolledEveryHold: float64(again) / float64(n)}
	return nil
}

// signIn signs agents in and registers their sessions, 32 at a time, and
// (when onCall) puts each on a call with benchCustomer(agent). It returns
// the GUIDs, for the bare HTTP baseline only.
func (e *benchEnv) signIn(ctx context.Context, agents []int, onCall bool) (map[int]string, error) {
	var mu sync.Mutex
	guids := make(map[int]string, len(agents))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, a := range agents {
		g.Go(func() error {
			guid, err := e.gw.SignIn(gctx, a, gateway.SignInRequest{}, false)
			if err != nil {
				return fmt.Errorf("sign in agent %d: %w", a, err)
			}
			if err := registerSession(gctx, e.js, a, guid, e.sim.authMode); err != nil {
				return err
			}
			mu.Lock()
			guids[a] = guid
			mu.Unlock()
			if onCall {
				return e.call(a)
			}
			return nil
		})
	}
	return guids, g.Wait()
}

// warmUp sends one command per agent (one per worker slot), so the worker
// has opened its gateway connections before anything is measured.
func (e *benchEnv) warmUp(ctx context.Context, results *tap, agents []int) error {
	base := results.count()
	if err := e.publish(ctx, fmt.Sprintf("warm%d", time.Now().UnixNano()), agents, 0, nil); err != nil {
		return err
	}
	return benchWait(ctx, time.Minute, "warm-up results", func() bool { return results.count() >= base+len(agents) })
}

// pipeline publishes one disconnect per agent (paced at one per every, 0
// = as fast as publish acks allow) and returns the time from the first
// publish to the last result.
func (e *benchEnv) pipeline(ctx context.Context, prog *progress, label string, results *tap, agents []int,
	every time.Duration, sent func(int, time.Time)) (time.Duration, error) {
	base, start := results.count(), time.Now()
	errc := make(chan error, 1)
	go func() { errc <- e.publish(ctx, "run", agents, every, sent) }()
	err := waitProgress(ctx, prog, label, 5*time.Minute, len(agents), func() int { return results.count() - base })
	elapsed := time.Since(start)
	return elapsed, errors.Join(err, <-errc)
}

func benchCommandID(tag string, agent int) string { return tag + "-" + strconv.Itoa(agent) }

// publish sends one disconnect per agent and waits for the publish acks.
func (e *benchEnv) publish(ctx context.Context, tag string, agents []int, every time.Duration, sent func(int, time.Time)) error {
	start := time.Now()
	for i, a := range agents {
		if every > 0 {
			if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
				time.Sleep(d) // pacing the offered load
			}
		}
		cmd := events.DisconnectCommand{CommandID: benchCommandID(tag, a), AgentID: a, Number: benchCustomer(a), TTL: time.Minute}
		data, err := json.Marshal(cmd)
		if err != nil {
			return err
		}
		m := nats.NewMsg(events.SubjectDisconnect)
		m.Data = data
		m.Header.Set(events.HeaderMsgID, cmd.CommandID)
		if sent != nil {
			sent(i, time.Now())
		}
		if _, err := e.ajs.PublishMsgAsync(m); err != nil {
			return err
		}
	}
	select {
	case <-e.ajs.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return fmt.Errorf("publish acks did not arrive")
	}
}

// allPolled waits until the simulator has seen a poll for every agent.
func (e *benchEnv) allPolled(ctx context.Context, prog *progress, label string, agents []int) error {
	return waitProgress(ctx, prog, label, 3*time.Minute, len(agents), func() int {
		n := 0
		for _, a := range agents {
			if e.sim.sim.Polls(a) > 0 {
				n++
			}
		}
		return n
	})
}

// waitProgress waits until count() reaches total, showing progress.
func waitProgress(ctx context.Context, prog *progress, label string, d time.Duration, total int, count func() int) error {
	return benchWait(ctx, d, label, func() bool {
		c := count()
		prog.set(label, c, total)
		return c >= total
	})
}

// tap counts the messages on a subject with a plain NATS subscription and
// remembers when each command_id was seen, by status (the last token).
type tap struct {
	sub      *nats.Subscription
	mu       sync.Mutex
	n        int
	when     map[string]time.Time
	statuses map[string]int
}

func (e *benchEnv) tap(subject string) (*tap, error) {
	t := &tap{when: map[string]time.Time{}, statuses: map[string]int{}}
	sub, err := e.nc.Subscribe(subject, func(m *nats.Msg) {
		now := time.Now()
		t.mu.Lock()
		defer t.mu.Unlock()
		t.n++
		if id := m.Header.Get(events.HeaderCommandID); id != "" {
			if _, ok := t.when[id]; !ok {
				t.when[id] = now
			}
		}
		t.statuses[m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]]++
	})
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	t.sub = sub
	return t, e.nc.Flush()
}

func (t *tap) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *tap) status(s string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statuses[s]
}

func (t *tap) seen() map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.when)
}

func (t *tap) stop() { _ = t.sub.Unsubscribe() }

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

// bareHTTPLoop POSTs one disconnect per agent from conc goroutines straight
// to the simulator, on a warm connection pool, and returns when the first
// started and when each completed.
func bareHTTPLoop(ctx context.Context, gw *gateway.Client, guids map[int]string, agents []int, conc int) (time.Time, []time.Time, error) {
	var wg sync.WaitGroup
	for range conc { // open the pool: 100-006, no such session
		wg.Add(1)
		go func() { defer wg.Done(); _ = gw.Disconnect(ctx, 59999, "1", "warm-up") }()
	}
	wg.Wait()
	var next atomic.Int64
	done := make([]time.Time, len(agents))
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range conc {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(agents); i = int(next.Add(1) - 1) {
				a := agents[i]
				if err := gw.Disconnect(gctx, a, benchCustomer(a), guids[a]); err != nil {
					return fmt.Errorf("bare HTTP: %w", err)
				}
				done[i] = time.Now()
			}
			return nil
		})
	}
	return start, done, g.Wait()
}

// perSecond is len(done) over the time from start to the last of done.
func perSecond(start time.Time, done []time.Time) float64 {
	return float64(len(done)) / slices.MaxFunc(done, func(a, b time.Time) int { return a.Compare(b) }).Sub(start).Seconds()
}

// writeFloor runs, from conc goroutines and with no gateway and no
// consumer, the JetStream writes the worker makes for one accepted
// command, on the same buckets: agent lease create and delete, ledger start
// and done, pending record, result (to a scratch stream, with a Nats-Msg-Id).
// Commands/s: no worker that keeps these writes goes faster on this machine.
func writeFloor(ctx context.Context, js jetstream.JetStream, n, conc int) (float64, error) {
	var kv [3]jetstream.KeyValue
	for i, b := range []string{events.BucketLeases, events.BucketLedger, events.BucketPending} {
		var err error
		if kv[i], err = js.KeyValue(ctx, b); err != nil {
			return 0, err
		}
	}
	leases, ledger, pending := kv[0], kv[1], kv[2]
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_FLOOR", Subjects: []string{"bench.BENCH_FLOOR"}}); err != nil {
		return 0, err
	}
	res := events.Result{AgentID: 59999, Number: benchCustomer(59999), Status: events.StatusAccepted, RetCode: "0",
		Attempts: 1, IssuedAt: time.Now(), CompletedAt: time.Now(), ExpiresAt: time.Now()}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range conc {
		g.Go(func() error {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				id := "floor-" + strconv.FormatInt(i, 10)
				key := "agent.floor" + strconv.FormatInt(i, 10)
				rev, err := leases.Create(gctx, key, []byte("bench"))
				if err != nil {
					return err
				}
				if _, err := ledger.Create(gctx, id, []byte(`{"state":"started","owner":"bench"}`)); err != nil {
					return err
				}
				r := res
				r.CommandID = id
				data, _ := json.Marshal(r)
				if _, err := pending.Put(gctx, events.PendingKey(r.AgentID, id), data); err != nil {
					return err
				}
				if _, err := ledger.Put(gctx, id, append([]byte(`{"state":"done","result":`), append(data, '}')...)); err != nil {
					return err
				}
				m := nats.NewMsg("bench.BENCH_FLOOR")
				m.Data = data
				m.Header.Set(events.HeaderMsgID, events.ResultMsgID(id))
				if _, err := js.PublishMsg(gctx, m); err != nil {
					return err
				}
				if err := leases.Delete(gctx, key, jetstream.LastRevision(rev)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("write floor: %w", err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rawConsumeAck publishes n messages to a scratch stream while conc
// goroutines consume (one pull subscription) and ack them: messages/s.
func rawConsumeAck(ctx context.Context, js jetstream.JetStream, n, conc int) (float64, error) {
	cons, err := scratchConsumer(ctx, js, "BENCH_RAW")
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(conc))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var done atomic.Int64
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				if m.Ack() == nil {
					done.Add(1)
				}
			}
		}()
	}
	go func() {
		defer close(msgs)
		for i := 0; i < n; i++ {
			m, err := it.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	start := time.Now()
	payload := make([]byte, 200)
	for range n {
		if _, err := js.PublishAsync("bench.BENCH_RAW", payload); err != nil {
			return 0, err
		}
	}
	err = benchWait(ctx, time.Minute, "raw consume", func() bool { return done.Load() >= int64(n) })
	elapsed := time.Since(start)
	wg.Wait()
	return float64(n) / elapsed.Seconds(), err
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

func scratchConsumer(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Consumer, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench." + name}})
	if err != nil {
		return nil, err
	}
	return s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy})
}

// selfCPU is the CPU time this process has used (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
