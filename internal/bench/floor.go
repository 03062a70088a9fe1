package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The floor: the least that any worker does for a command. Take it from a
// pull consumer, decode it, POST it, publish its result with a
// Nats-Msg-Id, Ack; with --ledger, also create a ledger record before the
// POST, like the worker's "started" record: the one write that tells a
// later delivery, after a crash, that a request may have gone out. No agent lease, no
// pending record, no retries, none of the other guarantees of the README's
// Reliability section. It runs as a child process like the worker, with
// as many in flight and the same GC setting, so its throughput bounds the
// throughput of any worker that executes and reports every command on
// this machine, and its publish -> POST latency bounds that of a worker
// with as many round trips of its own before the request.

// floorRun is what one run of the floor measured.
type floorRun struct {
	Agents []int       // one command each, after the warm-up's
	Start  time.Time   // first publish
	Sent   []time.Time // when the command of Agents[i] was published
	Done   []time.Time // each command's result seen, in no order
}

// floorRanges are the agents of the floor's two runs (without and with
// its ledger write) from first on: conc to warm up and n to measure each.
func floorRanges(first, n, conc int) [2][]int {
	return [2][]int{agentRange(first, conc+n), agentRange(first+conc+n, conc+n)}
}

// floors runs the floor without the ledger write on agents[0], then with
// it on agents[1] (see executeFloor).
func (e *benchEnv) floors(ctx context.Context, guids map[int]string, agents [2][]int, conc int, every time.Duration) ([2]floorRun, error) {
	var runs [2]floorRun
	for i, withLedger := range []bool{false, true} {
		var err error
		if runs[i], err = e.executeFloor(ctx, withLedger, guids, agents[i], conc, every); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// executeFloor runs the floor in a child process with conc in flight: one
// command for each of the first conc agents, so that it opens its gateway
// connections (as the worker's warm-up does), then, measured, one for each
// of the others, published at one per every (0 = as fast as publish acks
// allow).
func (e *benchEnv) executeFloor(ctx context.Context, withLedger bool, guids map[int]string, agents []int, conc int,
	every time.Duration) (floorRun, error) {
	name := "BENCH_EXEC"
	if withLedger {
		name += "_LEDGER"
	}
	if err := ProvisionFloor(ctx, e.js, name); err != nil {
		return floorRun{}, err
	}
	subject := FloorResults(name)
	file := filepath.Join(e.dir, name+"-guids.json")
	if err := WriteGUIDs(file, guids, agents); err != nil {
		return floorRun{}, err
	}
	results, err := e.tap(subject)
	if err != nil {
		return floorRun{}, err
	}
	defer results.stop()
	c, err := e.start(ctx, "bench-floor", "--stream", name, "--concurrency", strconv.Itoa(conc),
		"--guids", file, "--ledger="+strconv.FormatBool(withLedger))
	if err != nil {
		return floorRun{}, err
	}
	defer c.stop()
	warm := agents[:conc]
	if err := e.publishTo(ctx, "bench."+name, name, warm, 0, nil); err != nil {
		return floorRun{}, fmt.Errorf("floor: publish: %w", err)
	}
	if err := floorWait(ctx, c, results, len(warm)); err != nil {
		return floorRun{}, err
	}
	run := floorRun{Agents: agents[conc:], Start: time.Now(), Sent: make([]time.Time, len(agents)-conc)}
	if err := e.publishTo(ctx, "bench."+name, name, run.Agents, every, func(i int, t time.Time) { run.Sent[i] = t }); err != nil {
		return run, fmt.Errorf("floor: publish: %w", err)
	}
	if err := floorWait(ctx, c, results, len(agents)); err != nil {
		return run, err
	}
	ids := make([]string, len(run.Agents))
	for i, a := range run.Agents {
		ids[i] = CommandID(name, a)
	}
	run.Done = seenAt(results.seen(), ids)
	return run, nil
}

// floorWait waits until n results have been seen, or the child exited.
func floorWait(ctx context.Context, c *child, results *tap, n int) error {
	if err := benchWait(ctx, time.Minute, "floor", func() bool { return results.count() >= n || c.exited() }); err != nil {
		return err
	}
	if c.exited() {
		return fmt.Errorf("floor: the child exited; see its log, bench-floor.log")
	}
	return nil
}

// ProvisionFloor creates the floor's streams for stream: stream itself,
// on the subject "bench.<stream>", with the durable consumer "bench" the
// floor executes from, and the stream of its results (FloorResults).
func ProvisionFloor(ctx context.Context, js jetstream.JetStream, stream string) error {
	if _, err := scratchConsumer(ctx, js, stream); err != nil {
		return err
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream + "_RESULTS", Subjects: []string{FloorResults(stream)}})
	return err
}

// FloorResults is the subject the floor executing stream publishes its
// results on.
func FloorResults(stream string) string { return "bench." + stream + "_RESULTS" }

// DecodeGUIDs decodes a file WriteGUIDs wrote.
func DecodeGUIDs(b []byte) (map[int]string, error) {
	var guids map[int]string
	if err := json.Unmarshal(b, &guids); err != nil {
		return nil, err
	}
	return guids, nil
}

// WriteGUIDs writes the GUIDs of agents to file for the floor's child
// (see DecodeGUIDs).
func WriteGUIDs(file string, guids map[int]string, agents []int) error {
	m := make(map[int]string, len(agents))
	for _, a := range agents {
		m[a] = guids[a]
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}
