//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// Call-scope scenarios (DESIGN.md guarantees 8 and 9): the customer hangs
// up and calls back (a new call ID) while commands meant for the old call
// wait in the stream or are in flight. A release must never reach the new
// call, and every command still ends in exactly one result.

const (
	redialAgents = 150
	// redialRetryAgents is the size of TestRedialRaceRetry.
	redialRetryAgents = 100
	killMidAgents     = 150
	inFlightAgents    = 200
	slowLeaseAgents   = 50
	// killMidLease is the workers' --lease-ttl in TestKillMidRequest.
	killMidLease = 12 * time.Second
	// callStartMargin is the worker's default --call-start-margin.
	callStartMargin = 500 * time.Millisecond
)

// --- the simulator's call admin API ---

func (c *cluster) simCalls(agent int) ([]gatewaysim.CallState, error) {
	var cs []gatewaysim.CallState
	err := c.admin("GET", "/simulator/agents/"+strconv.Itoa(agent)+"/calls", nil, &cs)
	return cs, err
}

// lastCalls returns each agent's last call at the simulator; it fails
// the test when an agent has none.
func (c *cluster) lastCalls(first, n int) map[int]gatewaysim.CallState {
	out := map[int]gatewaysim.CallState{}
	var mu sync.Mutex
	c.forAgents(first, n, func(id int) error {
		cs, err := c.simCalls(id)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return fmt.Errorf("agent %d has no call", id)
		}
		mu.Lock()
		out[id] = cs[len(cs)-1]
		mu.Unlock()
		return nil
	})
	return out
}

// endCall makes the customer of the agent's call hang up (callID "" = the
// last call); redial makes the customer of the agent's most recently
// ended call call again at once. Both return the call's ID.
func (c *cluster) endCall(agent int, callID string) (string, error) {
	var out struct {
		CallID string `json:"callid"`
	}
	var in any
	if callID != "" {
		in = map[string]string{"callid": callID}
	}
	err := c.admin("POST", "/simulator/agents/"+strconv.Itoa(agent)+"/endcall", in, &out)
	return out.CallID, err
}

func (c *cluster) redial(agent int) (string, error) {
	var out struct {
		CallID string `json:"callid"`
	}
	err := c.admin("POST", "/simulator/agents/"+strconv.Itoa(agent)+"/redial", nil, &out)
	return out.CallID, err
}

// forAgents runs fn for agents first..first+n-1, 16 at a time, and fails
// the test with the first error.
func (c *cluster) forAgents(first, n int, fn func(id int) error) {
	ids := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := fn(id); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for id := first; id < first+n; id++ {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		c.t.Fatal(firstErr)
	}
}

// hangUpAndRedial ends every call of the agents that is still up and lets
// each customer call back; it returns the new (redialed) calls.
func (c *cluster) hangUpAndRedial(first, n int) map[int]gatewaysim.CallState {
	c.forAgents(first, n, func(id int) error {
		cs, err := c.simCalls(id)
		if err != nil {
			return err
		}
		for range cs {
			if _, err := c.endCall(id, ""); err != nil {
				return fmt.Errorf("agent %d: endcall: %w", id, err)
			}
		}
		if _, err := c.redial(id); err != nil {
			return fmt.Errorf("agent %d: redial: %w", id, err)
		}
		return nil
	})
	calls := c.lastCalls(first, n)
	for id, b := range calls {
		if !b.Redial || b.Generation < 2 {
			c.t.Fatalf("agent %d: last call %s after the redial is not a redialed call: %+v", id, b.CallID, b)
		}
	}
	return calls
}

// checkStillUp asserts that each agent's last call at the simulator is
// still want[agent], with its customer a party.
func (c *cluster) checkStillUp(want map[int]gatewaysim.CallState) {
	t := c.t
	bad := 0
	for id, w := range want {
		cs, err := c.simCalls(id)
		if err != nil {
			t.Fatal(err)
		}
		ok := len(cs) > 0 && cs[len(cs)-1].CallID == w.CallID && hasParty(cs[len(cs)-1], customer(id))
		if !ok {
			if bad++; bad <= 5 {
				t.Errorf("agent %d: call %s (generation %d) is not up any more with its customer: calls %+v", id, w.CallID, w.Generation, cs)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d redialed calls were hung up", bad, len(want))
	}
}

func hasParty(c gatewaysim.CallState, number string) bool {
	for _, p := range c.Parties {
		if p == number {
			return true
		}
	}
	return false
}

// requestsSince returns the disconnect requests for agents first..first+n-1
// that arrived at the simulator after since.
func (c *cluster) requestsSince(first, n int, since time.Time) []gatewaysim.Disconnect {
	var out []gatewaysim.Disconnect
	for _, d := range c.disconnects() {
		if d.AgentID >= first && d.AgentID < first+n && d.At.After(since) {
			out = append(out, d)
		}
	}
	return out
}

// inProgress counts disconnect requests the simulator is still working on.
func inProgress(recs []gatewaysim.Disconnect) int {
	n := 0
	for _, d := range recs {
		if d.RetCode == "" && d.Fault == "" && !d.Executed {
			n++
		}
	}
	return n
}

// --- the pollers' call state ---

// waitCallState waits until the pollers' live call state of every agent
// is being polled and shows want[agent] as its last call; it returns how
// long that took.
func (c *cluster) waitCallState(want map[int]gatewaysim.CallState, d time.Duration) time.Duration {
	t := c.t
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, events.BucketCalls)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int]string{}
	for id, w := range want {
		pending[id] = w.CallID
	}
	for len(pending) > 0 {
		for id, call := range pending {
			gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
			e, err := kv.Get(gctx, events.CallStateKey(id))
			gcancel()
			if err != nil {
				continue
			}
			var st events.CallState
			if json.Unmarshal(e.Value(), &st) != nil {
				continue
			}
			if last := st.LastCall(); st.Polling && last != nil && last.CallID == call {
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for id, call := range pending {
				t.Fatalf("call state of agent %d does not show call %s after %v (%d agents pending)", id, call, d, len(pending))
			}
		case <-time.After(300 * time.Millisecond):
		}
	}
	return time.Since(start)
}

// callStateWritten reports whether the pollers write the live call state
// (bucket callcontrol_calls) for agent within d. When they do not, the
// workers check every command's call with the gateway's call-info query.
func (c *cluster) callStateWritten(agent int, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, events.BucketCalls)
	if err != nil {
		c.t.Fatal(err)
	}
	return waitFor(d, func() bool {
		gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
		defer gcancel()
		_, err := kv.Get(gctx, events.CallStateKey(agent))
		return err == nil
	})
}

// checkPath names the way the worker checked the calls of n commands:
// by the gateway's call-info query when it made at least n of them.
func checkPath(queries int64, n int) string {
	if queries >= int64(n) {
		return "call-info query"
	}
	return "call state"
}

// waitCallStateStale waits until no agent's call state may be trusted by
// a worker (not polled, or older than --call-state-max-age 5 s), so that
// the workers ask the gateway's call-info query.
func (c *cluster) waitCallStateStale(first, n int, d time.Duration) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, events.BucketCalls)
	if err != nil {
		t.Fatal(err)
	}
	for id := first; id < first+n; id++ {
		for {
			gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
			e, err := kv.Get(gctx, events.CallStateKey(id))
			gcancel()
			var st events.CallState
			if err != nil || json.Unmarshal(e.Value(), &st) != nil || !st.Polling || time.Since(st.ObservedAt) > 6*time.Second {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("call state of agent %d still fresh after %v: %+v", id, d, st)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
}

// --- processes ---

// sigterm sends SIGTERM to ctr without waiting.
func (c *cluster) sigterm(ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.docker.ContainerKill(ctx, ctr.GetContainerID(), dockerclient.ContainerKillOptions{Signal: "TERM"}); err != nil {
		c.t.Fatal(err)
	}
}

// waitExit waits until ctr has exited and returns its exit code.
func (c *cluster) waitExit(ctr *testcontainers.DockerContainer, d time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	end := time.Now().Add(d)
	for {
		st, err := ctr.State(ctx)
		if err != nil {
			c.t.Fatal(err)
		}
		if !st.Running {
			return st.ExitCode
		}
		if time.Now().After(end) {
			c.t.Fatalf("still running %v after the signal\n%s", d, logs(ctr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopGracefully stops ctr with SIGTERM and fails the test unless it
// exits 0 within grace.
func (c *cluster) stopGracefully(ctr *testcontainers.DockerContainer, grace time.Duration) {
	start := time.Now()
	c.sigterm(ctr)
	if code := c.waitExit(ctr, grace); code != 0 {
		c.t.Errorf("exit code %d after SIGTERM\n%s", code, logs(ctr))
	}
	c.t.Logf("stopped gracefully (SIGTERM) in %v", time.Since(start).Round(time.Millisecond))
}

// --- result checks ---

// checkResults calls want for the single result of each command that has
// one; want returns "" when the result is right.
func (c *cluster) checkResults(cmds []command, want func(cmd command, r events.Result) string) {
	c.col.mu.Lock()
	defer c.col.mu.Unlock()
	bad := 0
	for _, cmd := range cmds {
		res := c.col.results[cmd.CommandID]
		if len(res) == 0 {
			continue // counted as lost by check
		}
		if why := want(cmd, res[0]); why != "" {
			if bad++; bad <= 5 {
				c.t.Errorf("%s: %s (result %s %q, call_id %q, attempts %d)", cmd.CommandID, why,
					res[0].Status, res[0].Reason, res[0].CallID, res[0].Attempts)
			}
		}
	}
	if bad > 0 {
		c.t.Errorf("%d of %d results are wrong", bad, len(cmds))
	}
}

// checkNothingSent fails the test for every disconnect request of the
// agents that arrived after since.
func (c *cluster) checkNothingSent(first, n int, since time.Time, what string) int {
	reqs := c.requestsSince(first, n, since)
	for i, d := range reqs {
		if i < 5 {
			c.t.Errorf("%s: the simulator received a disconnect for agent %d at %s (executed %v, call %s generation %d redial %v)",
				what, d.AgentID, d.At.Format(time.RFC3339Nano), d.Executed, d.CallID, d.CallGeneration, d.Redial)
		}
	}
	if len(reqs) > 0 {
		c.t.Errorf("%s: %d disconnect requests reached the simulator, want none", what, len(reqs))
	}
	return len(reqs)
}

// reasons logs how many results have each status and reason prefix (the
// reason up to its first ':').
func (c *cluster) reasons(cmds []command) string {
	c.col.mu.Lock()
	defer c.col.mu.Unlock()
	h := map[string]int{}
	attempts := 0
	for _, cmd := range cmds {
		res := c.col.results[cmd.CommandID]
		if len(res) == 0 {
			continue
		}
		reason, _, _ := strings.Cut(res[0].Reason, ":")
		h[string(res[0].Status)+" "+reason]++
		attempts += res[0].Attempts
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, h[k])
	}
	fmt.Fprintf(&b, "disconnect requests counted in results: %d", attempts)
	return b.String()
}

// trace describes the disconnect requests the simulator got for agent.
func (c *cluster) trace(agent int) string {
	var b strings.Builder
	for _, d := range c.disconnects() {
		if d.AgentID == agent {
			fmt.Fprintf(&b, "\n  %s retcode=%q executed=%v fault=%q call=%s gen=%d redial=%v",
				d.At.Format("15:04:05.000"), d.RetCode, d.Executed, d.Fault, d.CallID, d.CallGeneration, d.Redial)
		}
	}
	return b.String()
}

// checkNoOverlaps: never two gateway operations for one agent at once
// (guarantee 4); the simulator answers an overlapping one 000-007.
func (c *cluster) checkNoOverlaps(before int64) int64 {
	n := c.stats().Overlaps - before
	if n != 0 {
		c.t.Errorf("the simulator saw %d overlapping requests for one agent (answered 000-007)", n)
	}
	return n
}

// TestRedialRace: commands wait in the stream while the worker is down;
// meanwhile the customer hangs up and calls back. Part 1: commands with
// the call ID of call A (from the simulator), A ended and redialed as B,
// worker started: the pollers' call state says A ended. Part 2: plain
// commands stored during B, B ended and redialed as C more than the call
// start margin later, the worker started with the pollers stopped: the
// gateway's call-info query says the agent's call began after the
// command was stored. Every command ends failed with call_ended, nothing
// reaches the gateway, every redialed call stays up.
func TestRedialRace(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	first, n := firstAgent, redialAgents
	c := newCluster(t, clusterOpts{pollers: 1, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(first, n)
	callA := c.lastCalls(first, n)
	state := c.callStateWritten(first, 15*time.Second)
	if state {
		c.waitCallState(callA, time.Minute)
	} else {
		t.Logf("FINDING: the poller writes no live call state (bucket %s stays empty): every call check uses the gateway's call-info query", events.BucketCalls)
	}
	queries := c.stats().CallInfoQueries

	// Part 1: call_id of A, delivered during B.
	cmds := commands("redial-id", first, n, ttlConst(2*time.Minute))
	for i := range cmds {
		cmds[i].CallID = callA[cmds[i].AgentID].CallID
	}
	c.publish(ctx, cmds, 0)
	sentFrom := time.Now()
	callB := c.hangUpAndRedial(first, n)
	if state {
		lag := c.waitCallState(callB, time.Minute)
		t.Logf("calls A ended and redialed as B for %d agents; the call state showed every B %v later", n, lag.Round(time.Millisecond))
	}
	faultAt := time.Now()
	c.startWorker(ctx, 1)
	c.waitDone(cmds, 2*time.Minute)
	path := checkPath(c.stats().CallInfoQueries-queries, n)
	r := c.check("redial race: call_id of call A, delivered after A ended and B was redialed ("+path+")", cmds, faultAt)
	r.Sizes = fmt.Sprintf("%d agents, 1 worker started after the redial, 1 poller", n)
	c.checkResults(cmds, func(cmd command, res events.Result) string {
		a := callA[cmd.AgentID].CallID
		switch {
		case res.Status != events.StatusFailed || !strings.HasPrefix(res.Reason, events.ReasonCallEnded+":"):
			return "want failed with call_ended"
		case !strings.Contains(res.Reason, a):
			return "the reason does not name call A " + a
		case res.CallID != a:
			return "the result is not scoped to call A " + a
		case res.Attempts != 0:
			return "requests were sent"
		}
		return ""
	})
	c.checkNothingSent(first, n, sentFrom, "part 1")
	c.checkStillUp(callB)
	c.checkNoOverlaps(0)
	t.Logf("part 1 results: %s", c.reasons(cmds))
	record(t, r, started)

	// Part 2: plain commands stored during B, first delivered during C.
	started = time.Now()
	c.stopGracefully(c.workers[0], 25*time.Second)
	c.stopGracefully(c.pollers[0], 25*time.Second)
	c.waitCallStateStale(first, n, 30*time.Second)
	queries = c.stats().CallInfoQueries
	plain := commands("redial-plain", first, n, ttlConst(2*time.Minute))
	c.publish(ctx, plain, 0)
	stored := time.Now() // every command was stored before this
	sentFrom = stored
	time.Sleep(3 * callStartMargin)
	callC := c.hangUpAndRedial(first, n)
	for id, cc := range callC {
		if began := cc.Began.Sub(stored); began <= callStartMargin {
			t.Fatalf("agent %d: call %s began %v after the commands were stored, not more than --call-start-margin %v", id, cc.CallID, began, callStartMargin)
		}
	}
	faultAt = time.Now()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.workers[0].Start(sctx); err != nil {
		t.Fatal(err)
	}
	c.waitDone(plain, 2*time.Minute)
	r = c.check("redial race: plain commands stored during call B, first delivered after B ended and C was redialed (call-info query)", plain, faultAt)
	r.Sizes = fmt.Sprintf("%d agents, 1 worker restarted after the redial, pollers stopped", n)
	c.checkResults(plain, func(cmd command, res events.Result) string {
		switch {
		case res.Status != events.StatusFailed || !strings.HasPrefix(res.Reason, events.ReasonCallEnded+":"):
			return "want failed with call_ended"
		case res.CallID == callC[cmd.AgentID].CallID:
			return "pinned to call C, which began after the command was stored"
		case res.Attempts != 0:
			return "requests were sent"
		}
		return ""
	})
	c.checkNothingSent(first, n, sentFrom, "part 2")
	c.checkStillUp(callC)
	if q := c.stats().CallInfoQueries - queries; q < int64(n) {
		t.Errorf("the worker made %d call-info queries for %d commands: part 2 should check with the gateway", q, n)
	}
	c.checkNoOverlaps(0)
	t.Logf("part 2 results: %s", c.reasons(plain))
	record(t, r, started)
}

// TestKillMidRequest: the gateway takes 2 s per request; the worker is
// killed with SIGKILL while disconnects are in flight (the gateway
// still executes them), the calls still up are ended and every customer
// calls back; a second worker takes the commands over. It must send
// nothing to the redialed calls: at most one release per command, none
// of a redialed call, one result per command.
func TestKillMidRequest(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	first, n := firstAgent, killMidAgents
	c := newCluster(t, clusterOpts{simArgs: []string{"--sim-no-poll-signout", "0", "--sim-latency", "2s"}})
	c.agents(first, n)
	// Each attempt is a call-info query and a disconnect (no call state
	// here), 2 s each: the request deadline (the agent lease, 3/4 of its
	// TTL ahead at the attempt's start) must leave room for both; see
	// TestSlowGatewayLease for the suite's 4 s lease.
	c.startWorker(ctx, 1, "--lease-ttl", killMidLease.String())
	cmds := commands("killmid", first, n, ttlConst(2*time.Minute))
	c.publish(ctx, cmds, 0)
	// Kill once a first batch has results and the next one is in flight
	// at the gateway.
	var inflight int
	if !waitFor(90*time.Second, func() bool {
		inflight = inProgress(c.disconnects())
		return c.col.done(cmds) >= 10 && inflight >= 10
	}) {
		t.Fatalf("no disconnects in flight: %d results, %d in progress; simulator %+v\n%s", c.col.done(cmds), inflight, c.stats(), logs(c.workers[0]))
	}
	killedAt := time.Now()
	c.kill(c.workers[0])
	doneAtKill := c.col.done(cmds)
	atKill := c.disconnects()
	t.Logf("SIGKILL worker1 with %d disconnects in flight at the gateway and %d of %d results in", inflight, doneAtKill, n)
	// The gateway finishes (executes) what was in flight.
	if !waitFor(20*time.Second, func() bool { return inProgress(c.disconnects()) == 0 }) {
		t.Fatalf("requests still in progress 20 s after the kill")
	}
	// Requests in progress when the kill landed that the gateway executed
	// afterwards (records keep their arrival order).
	var lateExec int
	after := c.disconnects()
	for i, d := range atKill {
		if d.RetCode == "" && d.Fault == "" && !d.Executed && i < len(after) && after[i].Executed {
			lateExec++
		}
	}
	redialFrom := time.Now()
	callB := c.hangUpAndRedial(first, n)
	t.Logf("calls ended and redialed for %d agents", n)
	c.startWorker(ctx, 2, "--lease-ttl", killMidLease.String())
	c.waitDone(cmds, 3*time.Minute)
	// Let worker2 finish whatever it still holds.
	time.Sleep(2 * time.Second)
	r := c.check("worker SIGKILL with disconnects in flight, then hang-up and redial of every call", cmds, killedAt)
	r.Sizes = fmt.Sprintf("%d agents, gateway latency 2 s, %d disconnects in flight at the kill, 2nd worker after the redial, --lease-ttl %v", n, inflight, killMidLease)
	c.checkNothingSent(first, n, redialFrom, "after the redial")
	c.checkResults(cmds, func(cmd command, res events.Result) string {
		switch res.Status {
		case events.StatusAccepted:
			return ""
		case events.StatusFailed:
			if !strings.HasPrefix(res.Reason, events.ReasonCallEnded+":") {
				return "failed, but not with call_ended"
			}
			return ""
		}
		return "want accepted or failed with call_ended"
	})
	c.checkStillUp(callB)
	c.checkNoOverlaps(0)
	t.Logf("results: %s", c.reasons(cmds))
	t.Logf("%d results before the kill; %d releases executed by the gateway after the kill from requests the killed worker had sent; "+
		"results: %d accepted, %d failed", doneAtKill, lateExec, r.ByStatus[events.StatusAccepted], r.ByStatus[events.StatusFailed])
	record(t, r, started)
}

// TestShutdownInFlight: 200 commands in flight, a quarter or more of
// their disconnects at a gateway of 2 s latency, when the worker gets SIGTERM (--gateway-timeout 3s
// --shutdown-timeout 5s), customers redial 2 s after each release, and a
// second worker starts at once. Requests already sent are not cancelled:
// each command is released exactly once, none from a redialed call, and
// has exactly one result.
func TestShutdownInFlight(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	first, n := firstAgent, inFlightAgents
	c := newCluster(t, clusterOpts{pollers: 1, simArgs: []string{"--sim-no-poll-signout", "0", "--sim-latency", "2s", "--sim-redial", "2s"}})
	c.agents(first, n)
	state := c.callStateWritten(first, 15*time.Second)
	if state {
		c.waitCallState(c.lastCalls(first, n), time.Minute)
	} else {
		t.Logf("FINDING: the poller writes no live call state (bucket %s stays empty): each command's call-info query (2 s) precedes its disconnect", events.BucketCalls)
	}
	queries := c.stats().CallInfoQueries
	// --lease-ttl as in TestKillMidRequest: the call-info query and the
	// disconnect (2 s each) fit in one attempt's request deadline.
	flags := []string{"--gateway-timeout", "3s", "--shutdown-timeout", "5s", "--concurrency", "256", "--lease-ttl", killMidLease.String()}
	c.startWorker(ctx, 1, flags...)
	cmds := commands("inflight", first, n, ttlConst(2*time.Minute))
	c.publish(ctx, cmds, 0)
	// SIGTERM early, as in the issue (0.3 s after publishing): all 200
	// commands in the worker, none answered yet (2 s each), once a quarter
	// of them have their request in flight at the gateway (at once with a
	// fresh call state, after the call-info queries without). The rest
	// are not sent yet: the second worker takes them over. A fixed delay
	// found anywhere from 96 to 123 in flight 0.3 s after the first one
	// on the shared machine, so the test waits for the count.
	if !waitFor(30*time.Second, func() bool { return inProgress(c.disconnects()) >= n/4 }) {
		t.Fatalf("fewer than %d of %d disconnects in flight at the gateway at once within 30 s", n/4, n)
	}
	termAt := time.Now()
	c.sigterm(c.workers[0])
	inflight := inProgress(c.disconnects())
	t.Logf("SIGTERM worker1 with %d disconnects in flight at the gateway, %d of %d results in", inflight, c.col.done(cmds), n)
	second := make(chan struct{})
	go func() {
		defer close(second)
		c.startWorker(ctx, 2, flags...)
	}()
	code := c.waitExit(c.workers[0], 15*time.Second)
	stopped := time.Since(termAt)
	t.Logf("worker1 exited %d %v after SIGTERM", code, stopped.Round(time.Millisecond))
	if code != 0 || stopped > 6*time.Second {
		t.Errorf("worker1: exit code %d %v after SIGTERM (--shutdown-timeout 5s)\n%s", code, stopped, logs(c.workers[0]))
	}
	if inflight < n/4 {
		t.Errorf("only %d of %d commands had a request in flight just after SIGTERM", inflight, n)
	}
	<-second
	c.waitDone(cmds, 2*time.Minute)
	time.Sleep(2 * time.Second)
	r := c.check("worker SIGTERM with 200 commands in flight, a quarter or more of their requests at the gateway (redial 2 s after each release), 2nd worker started", cmds, termAt)
	r.Sizes = fmt.Sprintf("%d agents, gateway latency 2 s, %d disconnects in flight at SIGTERM, --shutdown-timeout 5s, --lease-ttl %v, redial 2 s, 1 poller (%s)",
		n, inflight, killMidLease, checkPath(c.stats().CallInfoQueries-queries, n))
	if r.Executed != n {
		t.Errorf("the simulator executed %d releases for %d commands", r.Executed, n)
	}
	// Guarantee 9: the answer to a request in flight at SIGTERM is
	// recorded: accepted with retcode 0, not already_released (which
	// would mean the answer was lost and a later check found the call
	// ended).
	c.checkResults(cmds, func(cmd command, res events.Result) string {
		if res.Status != events.StatusAccepted || res.Reason != "" || res.RetCode != "0" {
			return "want accepted with retcode 0 (the answer to the request in flight)"
		}
		return ""
	})
	// Each customer calls back after its release; those calls stay up.
	var redialed map[int]gatewaysim.CallState
	waitFor(15*time.Second, func() bool {
		redialed = c.lastCallsMaybe(first, n)
		for id := first; id < first+n; id++ {
			if b, ok := redialed[id]; !ok || !b.Redial {
				return false
			}
		}
		return true
	})
	if len(redialed) != n {
		t.Errorf("%d of %d agents have a redialed call", len(redialed), n)
	}
	c.checkStillUp(redialed)
	c.checkNoOverlaps(0)
	t.Logf("results: %s", c.reasons(cmds))
	record(t, r, started)
}

// TestSlowGatewayLease: the suite's worker settings (--lease-ttl 4s)
// against a gateway that takes 2 s per request, without call state: each
// attempt is a call-info query and then the disconnect. Every command
// must be released once and accepted, and no two requests for one agent
// may overlap (guarantee 4).
func TestSlowGatewayLease(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	first, n := firstAgent, slowLeaseAgents
	c := newCluster(t, clusterOpts{workers: 1, simArgs: []string{"--sim-no-poll-signout", "0", "--sim-latency", "2s"}})
	c.agents(first, n)
	cmds := commands("slowlease", first, n, ttlConst(30*time.Second))
	publishedAt := time.Now()
	c.publish(ctx, cmds, 0)
	c.waitDone(cmds, time.Minute)
	time.Sleep(time.Second)
	r := c.check("gateway latency 2 s, call-info query + disconnect per attempt, --lease-ttl 4s", cmds, publishedAt)
	r.Sizes = fmt.Sprintf("%d agents, 1 worker, no call state, TTL 30 s", n)
	c.checkResults(cmds, func(cmd command, res events.Result) string {
		if res.Status != events.StatusAccepted {
			return "want accepted"
		}
		return ""
	})
	overlaps := c.checkNoOverlaps(0)
	t.Logf("results: %s", c.reasons(cmds))
	t.Logf("requests for agent %d:%s", first, c.trace(first))
	if t.Failed() {
		t.Logf("worker log:\n%s", logs(c.workers[0]))
		r.Note = fmt.Sprintf("FINDING (product): with a 2 s gateway the worker's call-info query (2 s) and then the disconnect "+
			"share one request deadline, the agent lease's validity taken at the start of the attempt (3/4 of --lease-ttl 4s, "+
			"renewed every 1 s, so 2-3 s ahead). The disconnect is cut off client-side while the gateway executes it; every retry's "+
			"call-info query then meets the agent's request still in progress at the gateway (%d overlaps answered 000-007, guarantee 4) "+
			"or its own cut-off deadline, until the command's deadline. Results: %s; the simulator executed %d releases.",
			overlaps, c.reasons(cmds), r.Executed)
	}
	record(t, r, started)
}

// lastCallsMaybe is lastCalls without failing for agents that have no call.
func (c *cluster) lastCallsMaybe(first, n int) map[int]gatewaysim.CallState {
	out := map[int]gatewaysim.CallState{}
	var mu sync.Mutex
	c.forAgents(first, n, func(id int) error {
		cs, err := c.simCalls(id)
		if err != nil || len(cs) == 0 {
			return err
		}
		mu.Lock()
		out[id] = cs[len(cs)-1]
		mu.Unlock()
		return nil
	})
	return out
}

// TestRedialRaceRetry: every first request is refused as "being switched
// over" (000-004: answered, nothing released); while the worker waits to
// retry (--retry-initial 4s), every customer hangs up and calls back. The
// retries find the command's call gone: nothing is released, every
// result names the first call, and every new call stays up.
func TestRedialRaceRetry(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	first, n := firstAgent, redialRetryAgents
	c := newCluster(t, clusterOpts{pollers: 1, simArgs: []string{"--sim-no-poll-signout", "0"}})
	c.agents(first, n)
	callA := c.lastCalls(first, n)
	if err := c.admin("PUT", "/simulator/faults", gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{"retcode"}, RetCodes: []string{"000-004"}, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	// Every command in flight at once, so that every first request is
	// refused before the redials, and every retry comes after them (a
	// redial between a retry's check and its request is the window no
	// check can close, README "Call scope").
	c.startWorker(ctx, 1, "--retry-initial", "4s", "--retry-max", "8s", "--concurrency", "256")
	cmds := commands("redial-retry", first, n, ttlConst(2*time.Minute))
	c.publish(ctx, cmds, 0)
	if !waitFor(time.Minute, func() bool {
		seen := map[int]bool{}
		for _, d := range c.disconnects() {
			seen[d.AgentID] = true
		}
		return len(seen) >= n
	}) {
		t.Fatalf("first requests for %d agents, want %d", len(c.disconnects()), n)
	}
	faultAt := time.Now()
	callB := c.hangUpAndRedial(first, n)
	if d := time.Since(faultAt); d > 3*time.Second {
		t.Fatalf("the redials took %v, not within the worker's first retry wait", d)
	}
	c.faults(0)
	c.waitDone(cmds, 2*time.Minute)
	r := c.check("redial race: first request refused during call A (000-004), retried after A ended and B was redialed", cmds, faultAt)
	r.Sizes = fmt.Sprintf("%d agents, 1 worker (--retry-initial 4s), 1 poller", n)
	c.checkResults(cmds, func(cmd command, res events.Result) string {
		a := callA[cmd.AgentID].CallID
		switch {
		// not_a_party: the call state between the customer's release
		// and the call's end (the hang-up's two events).
		case res.Status != events.StatusFailed || !strings.HasPrefix(res.Reason, events.ReasonCallEnded+":") &&
			!strings.HasPrefix(res.Reason, events.ReasonNotAParty+":"):
			return "want failed with call_ended (or not_a_party)"
		case res.CallID != a:
			return "the result is not scoped to call A " + a
		case res.Attempts < 1:
			return "the refused first request is not counted"
		}
		return ""
	})
	for _, d := range c.disconnects() {
		if d.Executed {
			t.Errorf("agent %d: a party was released (call %s, redial %v)", d.AgentID, d.CallID, d.Redial)
		}
	}
	c.checkStillUp(callB)
	c.checkNoOverlaps(0)
	t.Logf("results: %s", c.reasons(cmds))
	record(t, r, started)
}
