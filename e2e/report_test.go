//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// row is one scenario's line in the summary table.
type row struct {
	Scenario    string
	Sizes       string
	Commands    int
	ByStatus    map[events.Status]int
	Executed    int // disconnects the simulator executed for these commands
	DupResults  int // commands with more than one stored result
	DupExecuted int // agent+number released more than once
	Lost        int // commands without any result
	AfterExpiry int // executions later than the command's expires_at
	// LateInFlight: executions after the deadline of requests that were
	// already in flight when the gateway froze, processed as it resumed.
	LateInFlight int
	// OnRedial: executed releases of these commands' agents that hit a
	// call started by a redial (the customer's next call): guarantee 8.
	OnRedial      int
	Confirmations string
	Recover       time.Duration // fault injected -> results flowing again
	Drain         time.Duration // fault injected -> last result
	Total         time.Duration
	Pass          bool
	// Note is printed under the table in results.md (a finding).
	Note string
}

var (
	reportMu sync.Mutex
	report   []row
)

// check asserts the guarantees over cmds and returns the summary row:
// exactly one result per command, each accepted disconnect executed
// exactly once by the simulator, nothing executed after its deadline.
func (c *cluster) check(name string, cmds []command, faultAt time.Time) row {
	return c.checkFrozen(name, cmds, faultAt, time.Time{}, time.Time{})
}

// checkFrozen is check for a gateway frozen from frozeAt to resumedAt: a
// request the worker sent before the deadline but the frozen gateway
// only processed when it resumed (within 5 s) is counted as LateInFlight,
// not as a violation: the worker cannot take back a request it sent. Its
// result must say so: reason outcome_unknown.
func (c *cluster) checkFrozen(name string, cmds []command, faultAt, frozeAt, resumedAt time.Time) row {
	t := c.t
	c.col.mu.Lock()
	defer c.col.mu.Unlock()
	r := row{Scenario: name, Commands: len(cmds), ByStatus: map[events.Status]int{}}

	recs := c.disconnects()
	type key struct {
		agent  int
		number string
	}
	executed := map[key][]time.Time{}
	onRedial := map[key]int{}
	for _, d := range recs {
		if d.Executed {
			k := key{d.AgentID, d.Number}
			executed[k] = append(executed[k], d.At)
			if d.Redial || d.CallGeneration > 1 {
				onRedial[k]++
			}
		}
	}
	for _, cmd := range cmds {
		res := c.col.results[cmd.CommandID]
		switch len(res) {
		case 0:
			r.Lost++
			if r.Lost <= 5 {
				t.Errorf("%s: no result", cmd.CommandID)
			}
			continue
		case 1:
		default:
			r.DupResults++
			if r.DupResults <= 5 {
				t.Errorf("%s: %d results stored: %+v", cmd.CommandID, len(res), res)
			}
		}
		st := res[0].Status
		r.ByStatus[st]++
		ex := executed[key{cmd.AgentID, cmd.Number}]
		r.Executed += len(ex)
		if n := onRedial[key{cmd.AgentID, cmd.Number}]; n > 0 {
			r.OnRedial += n
			t.Errorf("%s: agent %d number %s released %d times from a redialed call (result %s %q)",
				cmd.CommandID, cmd.AgentID, cmd.Number, n, st, res[0].Reason)
		}
		if len(ex) > 1 {
			r.DupExecuted++
			t.Errorf("%s: agent %d number %s released %d times", cmd.CommandID, cmd.AgentID, cmd.Number, len(ex))
		}
		late := 0
		for _, at := range ex {
			if at.After(cmd.expires) && !frozeAt.IsZero() && !cmd.expires.Before(frozeAt) &&
				!cmd.expires.After(resumedAt) && !at.Before(resumedAt) && at.Before(resumedAt.Add(5*time.Second)) {
				r.LateInFlight++
				late++
				continue
			}
			if at.After(cmd.expires) {
				r.AfterExpiry++
				if r.AfterExpiry <= 5 {
					t.Errorf("%s: executed at %s, %v after its deadline (result %s)", cmd.CommandID,
						at.Format(time.RFC3339Nano), at.Sub(cmd.expires), st)
				}
			}
		}
		switch {
		case st == events.StatusAccepted && len(ex) == 0 && !isAlreadyReleased(res[0].Reason):
			t.Errorf("%s: accepted (%s) but the simulator released nothing", cmd.CommandID, res[0].Reason)
		case st != events.StatusAccepted && len(ex) > late:
			t.Errorf("%s: %s (%s) but the simulator released the party", cmd.CommandID, st, res[0].Reason)
		case late > 0 && !strings.HasPrefix(res[0].Reason, events.ReasonOutcomeUnknown+":"):
			t.Errorf("%s: released late by the frozen gateway, but its result (%s, %q) does not say the outcome is unknown",
				cmd.CommandID, st, res[0].Reason)
		}
	}
	if !faultAt.IsZero() {
		var last time.Time
		var after []time.Time
		for _, a := range c.col.arrived {
			if a.After(faultAt) {
				after = append(after, a)
			}
			if a.After(last) {
				last = a
			}
		}
		sort.Slice(after, func(i, j int) bool { return after[i].Before(after[j]) })
		// Recovery: the longest pause in results after the fault.
		prev := faultAt
		for _, a := range after {
			if g := a.Sub(prev); g > r.Recover {
				r.Recover = g
			}
			prev = a
		}
		if last.After(faultAt) {
			r.Drain = last.Sub(faultAt)
		}
	}
	r.Pass = r.Lost == 0 && r.DupResults == 0 && r.DupExecuted == 0 && r.AfterExpiry == 0 && r.OnRedial == 0
	return r
}

// isAlreadyReleased: "already_released" or "already_released: <detail>"
// (a call check after a request that may have reached the gateway).
func isAlreadyReleased(reason string) bool {
	return reason == events.ReasonAlreadyReleased || strings.HasPrefix(reason, events.ReasonAlreadyReleased+":")
}

// record logs the row and keeps it for results.md.
func record(t *testing.T, r row, started time.Time) {
	r.Total = time.Since(started).Round(time.Second)
	r.Pass = r.Pass && !t.Failed()
	t.Logf("\n%s%s", tableHeader, r.line())
	reportMu.Lock()
	report = append(report, r)
	reportMu.Unlock()
}

const tableHeader = "| scenario | sizes | commands | accepted | expired | failed | rejected | executed | dup results | dup executions | lost | executed after expiry | sent in time, executed late by the frozen gateway | released on a redialed call | confirmations | recover | drain | total | pass |\n" +
	"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|\n"

func (r row) line() string {
	dur := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return d.Round(100 * time.Millisecond).String()
	}
	pass := "yes"
	if !r.Pass {
		pass = "**no**"
	}
	conf := r.Confirmations
	if conf == "" {
		conf = "-"
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n",
		r.Scenario, r.Sizes, r.Commands, r.ByStatus[events.StatusAccepted], r.ByStatus[events.StatusExpired],
		r.ByStatus[events.StatusFailed], r.ByStatus[events.StatusRejected], r.Executed, r.DupResults,
		r.DupExecuted, r.Lost, r.AfterExpiry, r.LateInFlight, r.OnRedial, conf, dur(r.Recover), dur(r.Drain), dur(r.Total), pass)
}

// writeReport writes e2e/results.md when any scenario ran.
func writeReport() {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(report) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("# Container fault suite results\n\n")
	b.WriteString("Generated by `make e2e` (e2e/*_test.go); do not edit by hand.\n")
	fmt.Fprintf(&b, "Run: %s, on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), hostDesc())
	b.WriteString("Deployment per scenario: 3 clustered NATS nodes (R3 streams and buckets), the gateway simulator " +
		"(plain HTTP, static GUIDs), workers with `--ack-wait 5s --lease-ttl 4s`, pollers with " +
		"`--poll-lease-ttl 10s --gateway-poll-timeout 5s`; each command releases the only customer of its own agent.\n\n")
	b.WriteString("- **executed**: disconnects the simulator executed for the scenario's commands (each should be 1 per accepted command).\n")
	b.WriteString("- **dup results / dup executions / lost / executed after expiry / released on a redialed call**: violations; all must be 0. " +
		"**released on a redialed call**: executed releases, for these commands' agents and numbers, that hit a call a redial started " +
		"(the simulator's `redial`, or a call generation above 1): the customer's next call (guarantee 8).\n")
	b.WriteString("- **Call-scope scenarios** (redial race, SIGKILL mid-request, shutdown with 200 in flight): the customer hangs up and " +
		"calls back (a new call ID) while commands for the old call wait or are in flight; their extra checks are in `e2e/callscope_test.go` " +
		"(results' reasons, requests the simulator received, every redialed call still up).\n")
	b.WriteString("- **API scenario**: the api role as a container; HTTP clients POST with `Idempotency-Key` and `Prefer: wait=20`, " +
		"half of them giving up on each request after 2 s and retrying with the same key (then following the `Location` of a 202); " +
		"each must get the one stored result (`e2e/api_test.go`).\n")
	b.WriteString("- **recover**: the longest gap between consecutive results after the fault was injected; " +
		"**drain**: from the fault to the last result.\n")
	b.WriteString("- **poller SIGKILL**: recover = from the kill to the last confirmation (the killed poller's agents " +
		"wait for their poll leases to expire, 10 s).\n\n")
	b.WriteString(tableHeader)
	late := 0
	for _, r := range report {
		b.WriteString(r.line())
		late += r.LateInFlight
	}
	if late > 0 {
		fmt.Fprintf(&b, "\n**Gateway frozen.** %d commands with a 10 s TTL had a request in flight when the gateway froze "+
			"(sent in time, before the deadline). The worker's request timed out, its retries found no live gateway and the command "+
			"ended `expired` at its deadline; the frozen gateway then processed the queued request when it resumed, 20 s after the "+
			"deadline, and released the party. The worker cannot take back a request it sent, so these are counted apart from "+
			"`executed after expiry`, and their results say so: reason `outcome_unknown: …` (checked for each of them).\n", late)
	}
	for _, r := range report {
		if r.Note != "" {
			fmt.Fprintf(&b, "\n**%s.** %s\n", r.Scenario, r.Note)
		}
	}
	_ = os.WriteFile("results.md", []byte(b.String()), 0o644)
}

func hostDesc() string {
	n := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = fmt.Sprint(strings.Count(string(b), "processor\t:"))
	}
	return n + " CPUs"
}
