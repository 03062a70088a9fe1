package soak

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// checker holds a history indexed for the checks.
type checker struct {
	h    History
	opts Options
	rep  Report

	runs []*run // in order of their first command in h.Commands
	// inWindow holds, for each run with a release in the window no call
	// check closes, the call it was scoped to (checkSameCall fills it).
	inWindow map[*run]string
	// firstStart is, per command_id, when its first copy started (stored,
	// else published): a plain command is pinned by it, a replay too.
	firstStart map[string]time.Time
	// strayResults are results no run can own.
	strayResults []stray
	// unmapped are the requests whose trace ID names no command.
	unmapped []int
	// confirmations by command_id (indexes into h.Confirmations), and the
	// command IDs in order of their first confirmation.
	confirmations   map[string][]int
	confirmationIDs []string
}

type stray struct{ id, detail string }

// run is one execution of a command_id: the original (with its duplicate
// and republished copies) or one dlq replay.
type run struct {
	id      string
	replay  int // 0 for the original, n for the n-th replay run (by start)
	start   time.Time
	cmds    []int    // indexes into h.Commands
	results []int    // indexes into h.Results
	reqs    []reqRef // in arrival order
}

type reqRef struct {
	i   int // index into h.Requests
	cmd int // index into h.Commands: the copy whose trace it carries
}

func (r *run) label() string {
	if r.replay == 0 {
		return ""
	}
	return fmt.Sprintf("replay %d: ", r.replay)
}

// invalid reports whether every copy of the run is invalid.
func (r *run) invalid(h History) bool {
	for _, i := range r.cmds {
		if h.Commands[i].Valid {
			return false
		}
	}
	return len(r.cmds) > 0
}

// callID returns the call_id of the run's first copy that has one.
func (r *run) callID(h History) string {
	for _, i := range r.cmds {
		if id := h.Commands[i].CallID; id != "" {
			return id
		}
	}
	return ""
}

// resultCallID returns the call the run's first result that names one
// names (the call a plain command was pinned to).
func (r *run) resultCallID(h History) string {
	for _, i := range r.results {
		if id := h.Results[i].Value.CallID; id != "" {
			return id
		}
	}
	return ""
}

// releasedCalls returns the calls the run's executed requests released
// the number from, in order.
func (r *run) releasedCalls(h History) []string {
	var out []string
	for _, q := range r.reqs {
		if d := h.Requests[q.i]; d.Executed && d.CallID != "" && !slices.Contains(out, d.CallID) {
			out = append(out, d.CallID)
		}
	}
	return out
}

// startOf is when a command started: stored, else published.
func startOf(c Command) time.Time {
	if !c.Stored.IsZero() {
		return c.Stored
	}
	return c.Published
}

func newChecker(h History, opts Options) *checker {
	c := &checker{
		h: h, opts: opts,
		rep: Report{
			Commands: len(h.Commands), Faults: len(h.Faults), Requests: len(h.Requests), Seed: h.Seed,
			Checked: map[string]int{},
		},
		firstStart:    map[string]time.Time{},
		inWindow:      map[*run]string{},
		confirmations: map[string][]int{},
	}
	for _, inv := range Invariants() {
		c.rep.Checked[inv] = 0
	}
	originals := map[string]*run{}
	replays := map[string][]*run{}
	for i, cmd := range h.Commands {
		id := cmd.CommandID
		if id == "" {
			id = cmd.ReplayOf
		}
		if cmd.ReplayOf == "" && cmd.MsgID != "" && cmd.MsgID != cmd.CommandID {
			// Rejected (a Nats-Msg-Id must be the command_id), its result
			// filed under the Nats-Msg-Id, so that it cannot take the real
			// command's: a run of its own under that ID.
			id = cmd.MsgID
		}
		st := startOf(cmd)
		if f, ok := c.firstStart[id]; !ok || st.Before(f) {
			c.firstStart[id] = st
		}
		var r *run
		if cmd.ReplayOf == "" {
			r = originals[id]
		}
		if r == nil {
			r = &run{id: id, start: st}
			c.runs = append(c.runs, r)
			if cmd.ReplayOf == "" {
				originals[id] = r
			} else {
				replays[id] = append(replays[id], r)
			}
		}
		r.cmds = append(r.cmds, i)
		if st.Before(r.start) {
			r.start = st
		}
	}
	for _, rs := range replays {
		slices.SortStableFunc(rs, func(a, b *run) int { return a.start.Compare(b.start) })
		for n, r := range rs {
			r.replay = n + 1
		}
	}
	c.mapRequests()
	c.mapResults(originals, replays)
	for i, o := range h.Confirmations {
		id := o.Value.CommandID
		if _, ok := c.confirmations[id]; !ok {
			c.confirmationIDs = append(c.confirmationIDs, id)
		}
		c.confirmations[id] = append(c.confirmations[id], i)
	}
	return c
}

// mapRequests gives each request to the command whose trace ID it carries.
func (c *checker) mapRequests() {
	type ref struct {
		cmd int
		run *run
	}
	byTrace := map[string][]ref{}
	for _, r := range c.runs {
		for _, i := range r.cmds {
			if t := strings.ToLower(c.h.Commands[i].TraceID); t != "" {
				byTrace[t] = append(byTrace[t], ref{i, r})
			}
		}
	}
	for _, refs := range byTrace {
		slices.SortStableFunc(refs, func(a, b ref) int {
			return startOf(c.h.Commands[a.cmd]).Compare(startOf(c.h.Commands[b.cmd]))
		})
	}
	for i, d := range c.h.Requests {
		refs := byTrace[traceID(d.Traceparent)]
		if len(refs) == 0 {
			c.unmapped = append(c.unmapped, i)
			continue
		}
		// The latest command of the trace that had started by the
		// request's arrival (the first when none had).
		pick := refs[0]
		for _, rf := range refs[1:] {
			if !startOf(c.h.Commands[rf.cmd]).After(d.At.Add(c.opts.ClockTolerance)) {
				pick = rf
			}
		}
		pick.run.reqs = append(pick.run.reqs, reqRef{i: i, cmd: pick.cmd})
	}
	for _, r := range c.runs {
		slices.SortStableFunc(r.reqs, func(a, b reqRef) int {
			return cmp.Or(c.h.Requests[a.i].At.Compare(c.h.Requests[b.i].At), a.i-b.i)
		})
	}
}

// mapResults gives each result to its run: by command_id, and by the
// replay suffix of its Nats-Msg-Id.
func (c *checker) mapResults(originals map[string]*run, replays map[string][]*run) {
	type group struct {
		id, seq string
		first   time.Time
		results []int
	}
	var groups []*group
	byKey := map[[2]string]*group{}
	for i, o := range c.h.Results {
		id, seq, ok := resultKey(o)
		if !ok {
			c.strayResults = append(c.strayResults, stray{id, fmt.Sprintf("result (seq %d, %s) has Nats-Msg-Id %q, not %q[-replay-<seq>]",
				o.Seq, o.Value.Status, o.MsgID, events.ResultMsgID(id))})
		}
		k := [2]string{id, seq}
		g := byKey[k]
		if g == nil {
			g = &group{id: id, seq: seq, first: o.Stored}
			byKey[k] = g
			groups = append(groups, g)
		}
		if o.Stored.Before(g.first) {
			g.first = o.Stored
		}
		g.results = append(g.results, i)
	}
	for _, g := range groups {
		var owner *run
		if g.seq == "" {
			owner = originals[g.id]
		} else if rs := replays[g.id]; len(rs) > 0 {
			owner = rs[0]
			for _, r := range rs[1:] {
				if !r.start.After(g.first.Add(c.opts.ClockTolerance)) {
					owner = r
				}
			}
		}
		if owner == nil {
			what := "a command the history does not have"
			switch {
			case g.seq != "":
				what = fmt.Sprintf("replay -replay-%s, but the history has no replay of the command", g.seq)
			case len(replays[g.id]) > 0:
				what = "the original command, but the history has only replays of it"
			}
			for _, i := range g.results {
				o := c.h.Results[i]
				c.strayResults = append(c.strayResults, stray{g.id, fmt.Sprintf("result (seq %d, %s, %q) of %s", o.Seq, o.Value.Status, o.MsgID, what)})
			}
			continue
		}
		owner.results = append(owner.results, g.results...)
	}
}

// resultKey returns a result's command_id and replay sequence ("" for the
// original run); ok is false when its Nats-Msg-Id is neither
// result-<command_id> nor that with a replay suffix (the result is then
// taken for the original run's).
func resultKey(o Observed[events.Result]) (id, seq string, ok bool) {
	id = o.Value.CommandID
	if id == "" {
		id, _ = strings.CutPrefix(o.MsgID, events.ResultMsgID(""))
		if i := strings.LastIndex(id, "-replay-"); i >= 0 && events.ReplayMsgIDSuffix(id[i+len("-replay-"):]) != "" {
			id = id[:i]
		}
	}
	base := events.ResultMsgID(id)
	switch {
	case o.MsgID == "" || o.MsgID == base:
		return id, "", true
	case strings.HasPrefix(o.MsgID, base+"-replay-"):
		s := o.MsgID[len(base+"-replay-"):]
		if events.ReplayMsgIDSuffix(s) != "" {
			return id, s, true
		}
	}
	return id, "", false
}

// traceID returns the trace ID of a W3C traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>"), lower case, or "" when tp is not one.
func traceID(tp string) string {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return ""
	}
	for _, p := range parts[:4] {
		if !isHex(p) {
			return ""
		}
	}
	t := strings.ToLower(parts[1])
	if t == strings.Repeat("0", 32) {
		return ""
	}
	return t
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case '0' <= b && b <= '9', 'a' <= b && b <= 'f', 'A' <= b && b <= 'F':
		default:
			return false
		}
	}
	return true
}
