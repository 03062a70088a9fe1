package soak

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// The invariants Check verifies, in the order the report lists them.
const (
	// InvariantOneResult: every run of a command (the original with its
	// duplicates and republished copies, and each dlq replay) has exactly
	// one result message (DESIGN.md #1, #9).
	InvariantOneResult = "one_result"
	// InvariantRejectedInvalid: an invalid command ends rejected and is
	// never sent (#5).
	InvariantRejectedInvalid = "rejected_invalid"
	// InvariantNotAfterDeadline: no request of a command arrives after its
	// deadline (#3).
	InvariantNotAfterDeadline = "not_after_deadline"
	// InvariantNotTwice: at most one executed request per run (#2), and no
	// request after an executed request that was answered (RetCode set and
	// no *_after fault), unless a fault of Options.LostAnswerFaults may
	// have kept that answer from the worker. A request after one with an
	// unknown outcome (no answer, or a *_after fault) or after an answered
	// request that executed nothing (transient, session or any other
	// retcode) is allowed.
	InvariantNotTwice = "not_twice"
	// InvariantSameCall: every executed release was taken from the
	// command's call (#8): its call_id, else the call its result names;
	// and for a plain command, from a call that began no later than
	// Options.CallStartMargin after the command was first stored. A
	// redialed call is named so in the violation.
	InvariantSameCall = "same_call"
	// InvariantConfirmed: every accepted result has exactly one
	// confirmation, and no confirmation names a command that was not
	// accepted.
	InvariantConfirmed = "confirmed"
	// InvariantResultConsistent: results do not contradict the gateway's
	// log: an accepted result has a reason starting already_released, or
	// its run has an executed request or one with an unknown outcome; a
	// failed or expired result of a run with an executed request has a
	// reason starting outcome_unknown.
	InvariantResultConsistent = "result_consistent"
	// InvariantNoSecret: no secret appears in a log line, stream message or
	// metrics page (#6).
	InvariantNoSecret = "no_secret"
	// InvariantKnownRequest: every disconnect request the simulator logged
	// carries the trace ID of a command of the history. A request that maps
	// to no command could not be checked by the invariants above (and
	// every disconnect comes from a worker executing a command), so it is
	// a violation.
	InvariantKnownRequest = "known_request"
)

// Invariants returns the names of the invariants Check verifies, in report
// order.
func Invariants() []string {
	return []string{
		InvariantOneResult, InvariantRejectedInvalid, InvariantNotAfterDeadline, InvariantNotTwice,
		InvariantSameCall, InvariantConfirmed, InvariantResultConsistent, InvariantNoSecret,
		InvariantKnownRequest,
	}
}

// Options are the checker's tolerances and windows. A zero field takes its
// default (see DefaultOptions).
type Options struct {
	// ClockTolerance is allowed wherever two timestamps taken by different
	// processes are compared (a request's arrival with its deadline, a
	// call's start with the command's storage time, a request with the
	// start of the run it belongs to). The simulator, NATS and the workers
	// share the machine's clock, so this covers only the order in which
	// each takes its timestamp around the same instant. Default 5 ms.
	ClockTolerance time.Duration
	// ConfirmWithin is how long after an accepted result (its CompletedAt,
	// else when it was stored) its confirmation may take: an accepted
	// result without one whose window had not passed at History.Finished
	// is pending at end, not a violation. Default 20 s (the worker's
	// --confirm-within is 15 s).
	ConfirmWithin time.Duration
	// CallStartMargin is the worker's --call-start-margin: a plain command
	// may be pinned to a call that began up to this long after the command
	// was stored, never to a later one. Default 500 ms.
	CallStartMargin time.Duration
	// LostAnswerFaults are the fault kinds (History.Faults) that can keep
	// an answer the simulator logged from the worker that sent the request
	// (the worker died or was cut off before it recorded the outcome, or
	// the answer came after the worker's client gave up). A request after
	// an executed, answered request of the same run is excused when such
	// a fault overlaps the time between the two (see LostAnswerGrace): the
	// delivery that takes the command over retries, and the gateway then
	// answers "already released". A kind ending in "*" matches by prefix.
	// nil takes DefaultLostAnswerFaults; an empty non-nil slice excuses
	// nothing.
	LostAnswerFaults []string
	// LostAnswerGrace widens the fault window backwards: a fault that
	// began up to this long before the answered request arrived (a worker
	// killed with its request in flight) still excuses. Default 1 s.
	LostAnswerGrace time.Duration
	// CheckWindow is the workers' --call-state-max-age: a check may rely
	// on call state that old, so a release taken from another call that
	// began less than this long before the request reached the gateway
	// (or after) lies in the window no call check closes: Report.InWindow,
	// not a violation. A call that began earlier was there to be seen.
	// Default 500 ms.
	CheckWindow time.Duration
}

// DefaultLostAnswerFaults is the default of Options.LostAnswerFaults.
var DefaultLostAnswerFaults = []string{
	"worker_sigkill", "worker_partition*", "worker_pause*", "worker_stop*",
	"nats_*", "gateway_freeze*", "gateway_slow*", "gateway_latency*",
}

// DefaultOptions returns the options Check uses.
func DefaultOptions() Options {
	return Options{
		ClockTolerance:   5 * time.Millisecond,
		ConfirmWithin:    20 * time.Second,
		CallStartMargin:  500 * time.Millisecond,
		LostAnswerFaults: slices.Clone(DefaultLostAnswerFaults),
		LostAnswerGrace:  time.Second,
		CheckWindow:      500 * time.Millisecond,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.ClockTolerance <= 0 {
		o.ClockTolerance = d.ClockTolerance
	}
	if o.ConfirmWithin <= 0 {
		o.ConfirmWithin = d.ConfirmWithin
	}
	if o.CallStartMargin <= 0 {
		o.CallStartMargin = d.CallStartMargin
	}
	if o.LostAnswerFaults == nil {
		o.LostAnswerFaults = d.LostAnswerFaults
	}
	if o.LostAnswerGrace <= 0 {
		o.LostAnswerGrace = d.LostAnswerGrace
	}
	if o.CheckWindow <= 0 {
		o.CheckWindow = d.CheckWindow
	}
	return o
}

// MinSecretLen is the shortest secret the no_secret check looks for;
// shorter ones (and empty ones) would match by chance and are skipped.
const MinSecretLen = 6

// Check verifies the guarantees on h with DefaultOptions.
func Check(h History) Report { return CheckWith(h, DefaultOptions()) }

// CheckWith verifies the guarantees on h. The simulator's request log
// (h.Requests) is the ground truth; a request belongs to the command whose
// TraceID is the trace ID of its traceparent.
//
// A command's runs: the commands of one command_id with no ReplayOf (the
// original, its duplicates and republished copies) are one run, and each
// replay (ReplayOf set) is a run of its own. A result belongs to the
// original run when its Nats-Msg-Id is result-<command_id> (or empty), to
// a replay when it ends in -replay-<seq>: results of one seq go to the
// latest replay run that had started (stored, else published) by the
// first of them. When commands share a trace ID, a request goes to the
// latest of them that had started by its arrival.
func CheckWith(h History, opts Options) Report {
	c := newChecker(h, opts.withDefaults())
	c.checkOneResult()
	c.checkRejectedInvalid()
	c.checkNotAfterDeadline()
	c.checkNotTwice()
	c.checkSameCall()
	c.checkConfirmed()
	c.checkResultConsistent()
	c.checkNoSecret()
	c.checkKnownRequest()
	order := map[string]int{}
	for i, inv := range Invariants() {
		order[inv] = i
	}
	slices.SortStableFunc(c.rep.Violations, func(a, b Violation) int { return order[a.Invariant] - order[b.Invariant] })
	return c.rep
}

// OK reports whether r has no violations.
func (r Report) OK() bool { return len(r.Violations) == 0 }

func (c *checker) violate(inv, id, format string, args ...any) {
	c.rep.Violations = append(c.rep.Violations, Violation{Invariant: inv, CommandID: id, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) checked(inv string, n int) { c.rep.Checked[inv] += n }

// unknownOutcome reports whether the worker could not know what request d
// did: no answer (a 5xx, reset or timeout fault answered instead, or the
// request was still in progress) or a *_after fault that executed it and
// then answered nothing.
func unknownOutcome(d gatewaysim.Disconnect) bool {
	return d.RetCode == "" || d.Fault == gatewaysim.FaultResetAfter || d.Fault == gatewaysim.FaultTimeoutAfter
}

// answeredExecuted reports whether d released a party and the worker was
// answered so.
func answeredExecuted(d gatewaysim.Disconnect) bool { return d.Executed && !unknownOutcome(d) }

func (c *checker) checkOneResult() {
	for _, r := range c.runs {
		c.checked(InvariantOneResult, 1)
		switch len(r.results) {
		case 1:
		case 0:
			c.violate(InvariantOneResult, r.id, "%sno result", r.label())
		default:
			parts := make([]string, 0, len(r.results))
			for _, i := range r.results {
				o := c.h.Results[i]
				parts = append(parts, fmt.Sprintf("seq %d %s %q", o.Seq, o.Value.Status, o.MsgID))
			}
			c.violate(InvariantOneResult, r.id, "%s%d results: %s", r.label(), len(r.results), strings.Join(parts, ", "))
		}
	}
	for _, s := range c.strayResults {
		c.checked(InvariantOneResult, 1)
		c.violate(InvariantOneResult, s.id, "%s", s.detail)
	}
}

func (c *checker) checkRejectedInvalid() {
	for _, r := range c.runs {
		if !r.invalid(c.h) {
			continue
		}
		c.checked(InvariantRejectedInvalid, 1)
		for _, i := range r.results {
			if res := c.h.Results[i].Value; res.Status != events.StatusRejected {
				c.violate(InvariantRejectedInvalid, r.id, "%sinvalid command ended %s (reason %q), want rejected", r.label(), res.Status, res.Reason)
				break
			}
		}
		if len(r.reqs) > 0 {
			d := c.h.Requests[r.reqs[0].i]
			c.violate(InvariantRejectedInvalid, r.id, "%sinvalid command was sent: %d request(s), the first at %s (executed %v)",
				r.label(), len(r.reqs), stamp(d.At), d.Executed)
		}
	}
}

func (c *checker) checkNotAfterDeadline() {
	for _, r := range c.runs {
		late, first := 0, -1
		for k, q := range r.reqs {
			dl := c.h.Commands[q.cmd].Deadline
			if dl.IsZero() {
				continue
			}
			c.checked(InvariantNotAfterDeadline, 1)
			if c.h.Requests[q.i].At.After(dl.Add(c.opts.ClockTolerance)) {
				late++
				if first < 0 {
					first = k
				}
			}
		}
		if late > 0 {
			q := r.reqs[first]
			d, dl := c.h.Requests[q.i], c.h.Commands[q.cmd].Deadline
			c.violate(InvariantNotAfterDeadline, r.id, "%srequest arrived at %s, %s after the deadline %s (executed %v, retcode %q); %d late request(s)",
				r.label(), stamp(d.At), d.At.Sub(dl), stamp(dl), d.Executed, d.RetCode, late)
		}
	}
}

func (c *checker) checkNotTwice() {
	for _, r := range c.runs {
		if len(r.reqs) == 0 {
			continue
		}
		c.checked(InvariantNotTwice, 1)
		var executed []string
		for _, q := range r.reqs {
			if d := c.h.Requests[q.i]; d.Executed {
				executed = append(executed, fmt.Sprintf("%s on call %s", stamp(d.At), d.CallID))
			}
		}
		if len(executed) > 1 {
			c.violate(InvariantNotTwice, r.id, "%sexecuted %d times: %s", r.label(), len(executed), strings.Join(executed, ", "))
		}
		// No request after an executed one whose answer the worker got,
		// unless a fault may have kept that answer from it.
		answered := -1
		for k, q := range r.reqs {
			d := c.h.Requests[q.i]
			if answered >= 0 {
				a := c.h.Requests[r.reqs[answered].i]
				if !c.lostAnswer(a.At, d.At) {
					c.violate(InvariantNotTwice, r.id, "%srequest at %s (retcode %q) after the request at %s was executed and answered retcode %q",
						r.label(), stamp(d.At), d.RetCode, stamp(a.At), a.RetCode)
					break
				}
			}
			if answeredExecuted(d) {
				answered = k
			}
		}
	}
}

// lostAnswer reports whether a fault of Options.LostAnswerFaults overlaps
// [answeredAt - LostAnswerGrace, next].
func (c *checker) lostAnswer(answeredAt, next time.Time) bool {
	from := answeredAt.Add(-c.opts.LostAnswerGrace)
	for _, f := range c.h.Faults {
		if !kindMatches(c.opts.LostAnswerFaults, f.Kind) {
			continue
		}
		end := f.Until
		if end.Before(f.At) {
			end = f.At
		}
		if !f.At.After(next) && !end.Before(from) {
			return true
		}
	}
	return false
}

func kindMatches(patterns []string, kind string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(kind, prefix) {
				return true
			}
		} else if p == kind {
			return true
		}
	}
	return false
}

func (c *checker) checkSameCall() {
	for _, r := range c.runs {
		pinned := r.resultCallID(c.h)
		for _, q := range r.reqs {
			d := c.h.Requests[q.i]
			if !d.Executed {
				continue
			}
			c.checked(InvariantSameCall, 1)
			want, why := c.h.Commands[q.cmd].CallID, "its call_id"
			if want == "" {
				want, why = r.callID(c.h), "the call_id of a copy of it"
			}
			if want == "" {
				want, why = pinned, "the call its result names"
			}
			redial := ""
			if d.Redial {
				redial = " (a redialed call)"
			}
			switch {
			case d.CallID == "":
				c.violate(InvariantSameCall, r.id, "%sexecuted release at %s names no call", r.label(), stamp(d.At))
			case want != "" && d.CallID != want && !becameLast(d).IsZero() &&
				becameLast(d).After(d.At.Add(-c.opts.CheckWindow-c.slowGateway(d.At)-c.opts.ClockTolerance)):
				c.inWindow[r] = want
				c.rep.InWindow = append(c.rep.InWindow, Violation{Invariant: InvariantSameCall, CommandID: r.id,
					Detail: fmt.Sprintf("%sreleased a party of call %s%s, which became the agent's last call at %s (it began at %s), %s before the request reached the gateway at %s; the command's call is %s (%s)",
						r.label(), d.CallID, redial, stamp(becameLast(d)), stamp(d.CallBegan), d.At.Sub(becameLast(d)), stamp(d.At), want, why)})
			case want != "" && d.CallID != want:
				c.violate(InvariantSameCall, r.id, "%sreleased a party of another call: call %s%s, generation %d, at %s; the command's call is %s (%s)",
					r.label(), d.CallID, redial, d.CallGeneration, stamp(d.At), want, why)
			case c.h.Commands[q.cmd].CallID == "" && r.callID(c.h) == "" && !d.CallBegan.IsZero():
				// A plain command: its call began no later than the margin
				// after the command (its first copy) was stored.
				first := c.firstStart[r.id]
				if !first.IsZero() && d.CallBegan.After(first.Add(c.opts.CallStartMargin+c.opts.ClockTolerance)) {
					c.violate(InvariantSameCall, r.id, "%sreleased a party of a call that began after the command: call %s%s began at %s, the command was stored at %s (margin %s)",
						r.label(), d.CallID, redial, stamp(d.CallBegan), stamp(first), c.opts.CallStartMargin)
				}
			}
		}
	}
}

// becameLast is when the call a release was taken from became the
// agent's last call, the one the gateway releases from: when it began,
// or when the call after it ended (a held call under a call that ended
// between the check and the request; seed 685979328). Histories from
// before the simulator recorded it have only the start.
func becameLast(d gatewaysim.Disconnect) time.Time {
	if d.CallLastSince.After(d.CallBegan) {
		return d.CallLastSince
	}
	return d.CallBegan
}

// slowGateway is how much a slow-gateway fault ("gateway_slow", target
// "latency=<d>") widens the window no check closes for a request that
// arrived at at: the call-info query's answer and the disconnect itself
// each came that much later, so twice its latency when one was on within
// that span before at (seed 57267020: a call began 750 ms before a
// request arrived, under 800 ms of latency).
func (c *checker) slowGateway(at time.Time) time.Duration {
	var widest time.Duration
	for _, f := range c.h.Faults {
		lat, ok := strings.CutPrefix(f.Target, "latency=")
		if f.Kind != "gateway_slow" || !ok {
			continue
		}
		d, err := time.ParseDuration(lat)
		if err != nil {
			continue
		}
		span := c.opts.CheckWindow + 2*d
		if !f.At.After(at) && (f.Until.IsZero() || f.Until.After(at.Add(-span))) {
			widest = max(widest, 2*d)
		}
	}
	return widest
}

func (c *checker) checkConfirmed() {
	finished := c.finished()
	accepted := map[string]bool{}
	for _, r := range c.runs {
		for _, i := range r.results {
			o := c.h.Results[i]
			if o.Value.Status != events.StatusAccepted {
				continue
			}
			accepted[r.id] = true
			c.checked(InvariantConfirmed, 1)
			confs := c.confirmations[r.id]
			switch len(confs) {
			case 1:
				cf := c.h.Confirmations[confs[0]].Value
				if st := cf.Status; st != events.ConfirmationConfirmed && st != events.ConfirmationUnconfirmed {
					c.violate(InvariantConfirmed, r.id, "%sconfirmation has status %q", r.label(), st)
				}
				// The calls released, or in the window the command's own
				// call: its end, by whatever cause, is what its result names.
				released := r.releasedCalls(c.h)
				if w, ok := c.inWindow[r]; ok {
					released = append(released, w)
				}
				if cf.Status == events.ConfirmationConfirmed && cf.CallID != "" &&
					len(released) > 0 && !slices.Contains(released, cf.CallID) {
					c.violate(InvariantConfirmed, r.id, "%sconfirmation names call %s; the gateway released the number from call %s",
						r.label(), cf.CallID, strings.Join(released, ", "))
				}
			case 0:
				at := o.Value.CompletedAt
				if at.IsZero() {
					at = o.Stored
				}
				if finished.Before(at.Add(c.opts.ConfirmWithin)) {
					c.rep.PendingAtEnd++
					continue
				}
				c.violate(InvariantConfirmed, r.id, "%saccepted at %s, no confirmation by the end of the run at %s", r.label(), stamp(at), stamp(finished))
			default:
				parts := make([]string, 0, len(confs))
				for _, k := range confs {
					parts = append(parts, fmt.Sprintf("seq %d %s", c.h.Confirmations[k].Seq, c.h.Confirmations[k].Value.Status))
				}
				c.violate(InvariantConfirmed, r.id, "%s%d confirmations: %s", r.label(), len(confs), strings.Join(parts, ", "))
			}
		}
	}
	for _, id := range c.confirmationIDs {
		if accepted[id] {
			continue
		}
		c.checked(InvariantConfirmed, 1)
		o := c.h.Confirmations[c.confirmations[id][0]]
		c.violate(InvariantConfirmed, id, "confirmation (%s, seq %d) of a command with no accepted result", o.Value.Status, o.Seq)
	}
}

// finished is h.Finished, or the latest time the history holds when it is
// not set.
func (c *checker) finished() time.Time {
	if !c.h.Finished.IsZero() {
		return c.h.Finished
	}
	var t time.Time
	later := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	for _, o := range c.h.Results {
		later(o.Stored)
	}
	for _, o := range c.h.Confirmations {
		later(o.Stored)
	}
	for _, d := range c.h.Requests {
		later(d.At)
	}
	return t
}

func (c *checker) checkResultConsistent() {
	for _, r := range c.runs {
		executed, unknown := false, false
		for _, q := range r.reqs {
			d := c.h.Requests[q.i]
			executed = executed || d.Executed
			unknown = unknown || unknownOutcome(d)
		}
		for _, i := range r.results {
			res := c.h.Results[i].Value
			c.checked(InvariantResultConsistent, 1)
			switch res.Status {
			case events.StatusAccepted:
				if strings.HasPrefix(res.Reason, events.ReasonAlreadyReleased) || executed || unknown {
					continue
				}
				c.violate(InvariantResultConsistent, r.id, "%sresult contradicts the gateway: accepted (reason %q) but none of its %d request(s) was executed or went unanswered",
					r.label(), res.Reason, len(r.reqs))
			case events.StatusFailed, events.StatusExpired:
				if executed && !strings.HasPrefix(res.Reason, events.ReasonOutcomeUnknown) {
					c.violate(InvariantResultConsistent, r.id, "%sresult contradicts the gateway: %s (reason %q) but the gateway executed a request of it; want a reason starting %q",
						r.label(), res.Status, res.Reason, events.ReasonOutcomeUnknown)
				}
			}
		}
	}
}

func (c *checker) checkKnownRequest() {
	c.checked(InvariantKnownRequest, len(c.h.Requests))
	for _, i := range c.unmapped {
		d := c.h.Requests[i]
		tp := "no traceparent"
		if d.Traceparent != "" {
			tp = fmt.Sprintf("traceparent %q", d.Traceparent)
		}
		c.violate(InvariantKnownRequest, "", "request for agent %d number %s at %s (%s) maps to no command (executed %v, retcode %q)",
			d.AgentID, events.MaskNumber(d.Number), stamp(d.At), tp, d.Executed, d.RetCode)
	}
}

// stamp formats t for a violation's detail.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "(no time)"
	}
	return t.Format("15:04:05.000")
}
