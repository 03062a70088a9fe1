package soak

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// trace returns the trace ID of command id (32 hex digits).
func trace(id string) string {
	h := fmt.Sprintf("%x", id)
	return (h + strings.Repeat("0", 32))[:31] + "1"
}

func tp(trace string) string { return "00-" + trace + "-00f067aa0ba902b7-01" }

const (
	number = "13800001234"
	guid   = "5f2c9d1e-7a44-4b0e-9c1f-3d2a8e6b7c01"
)

// cmd is a valid plain command stored at storedMs with a 10 s deadline.
func cmd(id string, storedMs int) Command {
	return Command{
		CommandID: id, AgentID: 101, Number: number, TraceID: trace(id),
		Published: at(storedMs + 1), Stored: at(storedMs), Deadline: at(storedMs + 10_000),
		Valid: true, Kind: "plain",
	}
}

// req is a request of trace tr arriving at atMs answered retcode rc.
func req(tr string, atMs int, rc string) gatewaysim.Disconnect {
	return gatewaysim.Disconnect{AgentID: 101, Number: number, At: at(atMs), RetCode: rc, Traceparent: tp(tr)}
}

// exec is a request that released the party from call callID.
func executedReq(tr string, atMs int, rc, callID string) gatewaysim.Disconnect {
	d := req(tr, atMs, rc)
	d.Executed, d.CallID, d.CallGeneration, d.CallBegan = true, callID, 1, at(-60_000)
	return d
}

func result(id string, seq uint64, storedMs int, st events.Status, reason, callID string) Observed[events.Result] {
	return Observed[events.Result]{
		Seq: seq, Stored: at(storedMs), Subject: events.ResultSubject(st), MsgID: events.ResultMsgID(id),
		Value: events.Result{CommandID: id, AgentID: 101, Number: number, Status: st, Reason: reason, CallID: callID, CompletedAt: at(storedMs - 1)},
	}
}

func confirmation(id string, seq uint64, storedMs int) Observed[events.Confirmation] {
	return Observed[events.Confirmation]{
		Seq: seq, Stored: at(storedMs), MsgID: events.ConfirmationMsgID(id),
		Value: events.Confirmation{CommandID: id, AgentID: 101, Number: number, Status: events.ConfirmationConfirmed},
	}
}

// good is a history that keeps every guarantee, with one command of most
// kinds the generator makes. Each call returns a fresh copy.
func good() History {
	h := History{Seed: 42, Started: at(0), Finished: at(120_000), Secrets: []string{guid, "s3cret-password", "tok"}}
	add := func(c Command) { h.Commands = append(h.Commands, c) }

	// A: plain, executed at once on the call it was pinned to.
	add(cmd("A", 100))
	h.Requests = append(h.Requests, executedReq(trace("A"), 110, "0", "call-1"))
	h.Results = append(h.Results, result("A", 1, 120, events.StatusAccepted, "", "call-1"))
	h.Confirmations = append(h.Confirmations, confirmation("A", 1, 500))

	// B: scoped; a 5xx, then executed.
	b := cmd("B", 200)
	b.CallID, b.Kind = "call-2", "scoped"
	add(b)
	d := req(trace("B"), 210, "")
	d.Fault = gatewaysim.Fault5xx
	h.Requests = append(h.Requests, d, executedReq(trace("B"), 260, "0", "call-2"))
	h.Results = append(h.Results, result("B", 2, 270, events.StatusAccepted, "", "call-2"))
	h.Confirmations = append(h.Confirmations, confirmation("B", 2, 600))

	// C: invalid, rejected, never sent.
	c := cmd("C", 300)
	c.Valid, c.Kind = false, "malformed"
	add(c)
	h.Results = append(h.Results, result("C", 3, 305, events.StatusRejected, "number: must be 1..24 digits", ""))

	// D: expired before it could be sent.
	d2 := cmd("D", 400)
	d2.Kind, d2.Deadline = "expired", at(390)
	add(d2)
	h.Results = append(h.Results, result("D", 4, 405, events.StatusExpired, "expired", ""))

	// E: executed by a reset_after fault, the retry finds it released.
	add(cmd("E", 500))
	d = executedReq(trace("E"), 510, "0", "call-5")
	d.Fault = gatewaysim.FaultResetAfter
	h.Requests = append(h.Requests, d, req(trace("E"), 560, "200-023"))
	h.Results = append(h.Results, result("E", 5, 570, events.StatusAccepted, "already_released: 200-023", "call-5"))
	h.Confirmations = append(h.Confirmations, confirmation("E", 3, 900))

	// F: published twice with the same command_id (own trace each); one
	// execution, one result.
	add(cmd("F", 600))
	f2 := cmd("F", 650)
	f2.Kind, f2.TraceID = "duplicate", trace("F2")
	add(f2)
	h.Requests = append(h.Requests, executedReq(trace("F"), 610, "0", "call-6"))
	h.Results = append(h.Results, result("F", 6, 620, events.StatusAccepted, "", "call-6"))
	h.Confirmations = append(h.Confirmations, confirmation("F", 4, 1000))

	// G: timed out until failed (outcome unknown), dead-lettered, replayed
	// (own trace ID), executed by the replay.
	add(cmd("G", 700))
	d = req(trace("G"), 710, "")
	d.Fault = gatewaysim.FaultTimeout
	h.Requests = append(h.Requests, d)
	h.Results = append(h.Results, result("G", 7, 800, events.StatusFailed, "outcome_unknown: timeout", "call-7"))
	g2 := cmd("G", 5_000)
	g2.Kind, g2.ReplayOf, g2.TraceID = "replay", "G", trace("G-replay")
	add(g2)
	h.Requests = append(h.Requests, executedReq(trace("G-replay"), 5_010, "0", "call-7"))
	r := result("G", 9, 5_020, events.StatusAccepted, "", "call-7")
	r.MsgID += events.ReplayMsgIDSuffix("7")
	h.Results = append(h.Results, r)
	h.Confirmations = append(h.Confirmations, confirmation("G", 5, 5_500))

	// H: the agent was busy (000-007), then executed.
	add(cmd("H", 800))
	h.Requests = append(h.Requests, req(trace("H"), 810, "000-007"), executedReq(trace("H"), 900, "0", "call-8"))
	h.Results = append(h.Results, result("H", 8, 910, events.StatusAccepted, "", "call-8"))
	h.Confirmations = append(h.Confirmations, confirmation("H", 6, 1_200))

	// I: accepted 5 s before the end: its confirmation may still come.
	add(cmd("I", 115_000))
	h.Requests = append(h.Requests, executedReq(trace("I"), 115_010, "0", "call-9"))
	h.Results = append(h.Results, result("I", 10, 115_020, events.StatusAccepted, "", "call-9"))

	// J: executed by a timeout_after fault, expired: outcome unknown.
	add(cmd("J", 1_000))
	d = executedReq(trace("J"), 1_010, "0", "call-10")
	d.Fault = gatewaysim.FaultTimeoutAfter
	h.Requests = append(h.Requests, d)
	h.Results = append(h.Results, result("J", 11, 11_000, events.StatusExpired, "outcome_unknown: deadline passed", "call-10"))

	h.Faults = []Fault{{At: at(200), Kind: "gateway_5xx", Until: at(300)}}
	h.Logs = []string{
		`{"level":"info","command_id":"A","number":"*******1234","msg":"accepted"}`,
		`{"level":"info","agent":101,"guid_set":true}`,
	}
	h.Streams = []string{`{"command_id":"A","status":"accepted"}`}
	h.Metrics = []string{"callcontrol_commands_total{status=\"accepted\",retcode=\"0\"} 7\n"}
	return h
}

func TestCheckPassesAGoodHistory(t *testing.T) {
	rep := Check(good())
	if !rep.OK() {
		t.Fatalf("violations in a good history:\n%s", rep.Table())
	}
	if rep.PendingAtEnd != 1 {
		t.Errorf("PendingAtEnd = %d, want 1 (command I)", rep.PendingAtEnd)
	}
	if rep.Commands != 12 || rep.Requests != 12 || rep.Faults != 1 || rep.Seed != 42 {
		t.Errorf("counts: %d commands, %d requests, %d faults, seed %d", rep.Commands, rep.Requests, rep.Faults, rep.Seed)
	}
	want := map[string]int{
		InvariantOneResult:        11, // 10 originals (F's copies are one run) + G's replay
		InvariantRejectedInvalid:  1,
		InvariantNotAfterDeadline: 12,
		InvariantNotTwice:         9,
		InvariantSameCall:         8,
		InvariantConfirmed:        7,
		InvariantResultConsistent: 11,
		InvariantNoSecret:         2, // "tok" is too short
		InvariantKnownRequest:     12,
	}
	for inv, n := range want {
		if rep.Checked[inv] != n {
			t.Errorf("Checked[%s] = %d, want %d", inv, rep.Checked[inv], n)
		}
	}
	if s := rep.Table(); !strings.Contains(s, "PASS") || !strings.Contains(s, "| one_result | 11 | 0 |") {
		t.Errorf("table:\n%s", s)
	}
}

func TestCheckEmptyHistory(t *testing.T) {
	if rep := Check(History{}); !rep.OK() {
		t.Fatalf("empty history:\n%s", rep.Table())
	}
}

func findResult(t *testing.T, h History, msgID string) int {
	t.Helper()
	for i, o := range h.Results {
		if o.MsgID == msgID {
			return i
		}
	}
	t.Fatalf("no result %q", msgID)
	return -1
}

func findConfirmation(t *testing.T, h History, id string) int {
	t.Helper()
	for i, o := range h.Confirmations {
		if o.Value.CommandID == id {
			return i
		}
	}
	t.Fatalf("no confirmation of %q", id)
	return -1
}

// findRequest returns the n-th request (from 0) of trace tr.
func findRequest(t *testing.T, h History, tr string, n int) int {
	t.Helper()
	for i, d := range h.Requests {
		if d.Traceparent == tp(tr) {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("no request %d of trace %s", n, tr)
	return -1
}

func findCommand(t *testing.T, h History, id, kind string) int {
	t.Helper()
	for i, c := range h.Commands {
		if c.CommandID == id && (kind == "" || c.Kind == kind) {
			return i
		}
	}
	t.Fatalf("no command %q", id)
	return -1
}

// TestCheckFindsEachViolation breaks one guarantee at a time in the good
// history and expects exactly the violations named.
func TestCheckFindsEachViolation(t *testing.T) {
	type want struct{ inv, id, detail string }
	tests := []struct {
		name   string
		break_ func(t *testing.T, h *History)
		want   []want
	}{
		{"two results", func(t *testing.T, h *History) {
			r := h.Results[findResult(t, *h, "result-A")]
			r.Seq = 99
			h.Results = append(h.Results, r)
		}, []want{{InvariantOneResult, "A", "2 results"}}},
		{"no result", func(t *testing.T, h *History) {
			h.Results = slices.Delete(h.Results, findResult(t, *h, "result-D"), findResult(t, *h, "result-D")+1)
		}, []want{{InvariantOneResult, "D", "no result"}}},
		{"a result for each copy of a duplicate", func(t *testing.T, h *History) {
			r := h.Results[findResult(t, *h, "result-F")]
			r.Seq, r.Stored = 98, at(700)
			h.Results = append(h.Results, r)
		}, []want{{InvariantOneResult, "F", "2 results"}}},
		{"the replay has no result", func(t *testing.T, h *History) {
			i := findResult(t, *h, "result-G-replay-7")
			h.Results = slices.Delete(h.Results, i, i+1)
			h.Confirmations = slices.Delete(h.Confirmations, findConfirmation(t, *h, "G"), findConfirmation(t, *h, "G")+1)
		}, []want{{InvariantOneResult, "G", "replay 1: no result"}}},
		{"a replay result without a replay", func(t *testing.T, h *History) {
			r := h.Results[findResult(t, *h, "result-D")]
			r.MsgID += "-replay-12"
			h.Results = append(h.Results, r)
		}, []want{{InvariantOneResult, "D", "no replay of the command"}}},
		{"a result of no command", func(t *testing.T, h *History) {
			h.Results = append(h.Results, result("Z", 50, 1_000, events.StatusRejected, "payload: not JSON", ""))
		}, []want{{InvariantOneResult, "Z", "a command the history does not have"}}},
		{"a result with a foreign Nats-Msg-Id", func(t *testing.T, h *History) {
			h.Results[findResult(t, *h, "result-D")].MsgID = "result-D-again"
		}, []want{{InvariantOneResult, "D", `Nats-Msg-Id "result-D-again"`}}},

		{"an invalid command not rejected", func(t *testing.T, h *History) {
			i := findResult(t, *h, "result-C")
			h.Results[i].Value.Status, h.Results[i].Value.Reason = events.StatusFailed, "200-023"
		}, []want{{InvariantRejectedInvalid, "C", "ended failed"}}},
		{"an invalid command sent", func(t *testing.T, h *History) {
			h.Requests = append(h.Requests, req(trace("C"), 302, "200-023"))
		}, []want{{InvariantRejectedInvalid, "C", "was sent: 1 request(s)"}}},

		{"a request after the deadline", func(t *testing.T, h *History) {
			h.Commands[findCommand(t, *h, "A", "")].Deadline = at(104)
		}, []want{{InvariantNotAfterDeadline, "A", "6ms after the deadline"}}},
		{"a retry after the deadline", func(t *testing.T, h *History) {
			h.Commands[findCommand(t, *h, "H", "")].Deadline = at(850)
		}, []want{{InvariantNotAfterDeadline, "H", "50ms after the deadline"}}},
		{"the replay sent after its own deadline", func(t *testing.T, h *History) {
			h.Commands[findCommand(t, *h, "G", "replay")].Deadline = at(5_000)
		}, []want{{InvariantNotAfterDeadline, "G", "replay 1: request arrived at 03:04:10.010"}}},

		{"executed twice", func(t *testing.T, h *History) {
			// E's retry (after the reset_after, so allowed) executes too.
			i := findRequest(t, *h, trace("E"), 1)
			h.Requests[i] = executedReq(trace("E"), 560, "0", "call-5")
		}, []want{{InvariantNotTwice, "E", "executed 2 times"}}},
		{"executed by both copies of a duplicate", func(t *testing.T, h *History) {
			d := executedReq(trace("F2"), 660, "0", "call-6")
			d.Fault = gatewaysim.FaultResetAfter // so only the count rule breaks
			h.Requests = append(h.Requests, d)
			i := findRequest(t, *h, trace("F"), 0)
			h.Requests[i].Fault = gatewaysim.FaultResetAfter
		}, []want{{InvariantNotTwice, "F", "executed 2 times"}}},
		{"a retry after an answered execution", func(t *testing.T, h *History) {
			h.Requests = append(h.Requests, req(trace("A"), 150, "200-023"))
		}, []want{{InvariantNotTwice, "A", "after the request at 03:04:05.110 was executed and answered"}}},

		{"a release on a redialed call of another call", func(t *testing.T, h *History) {
			i := findRequest(t, *h, trace("B"), 1)
			h.Requests[i].CallID, h.Requests[i].CallGeneration, h.Requests[i].Redial = "call-2b", 2, true
		}, []want{{InvariantSameCall, "B", "released a party of another call: call call-2b (a redialed call)"}}},
		{"a release on another call that began just before the call state's trust", func(t *testing.T, h *History) {
			i := findRequest(t, *h, trace("B"), 1)
			h.Requests[i].CallID, h.Requests[i].CallBegan = "call-2c", h.Requests[i].At.Add(-600*time.Millisecond)
		}, []want{{InvariantSameCall, "B", "released a party of another call: call call-2c"}}},
		{"a plain command released from another call than its pinned one", func(t *testing.T, h *History) {
			h.Requests[findRequest(t, *h, trace("A"), 0)].CallID = "call-other"
		}, []want{{InvariantSameCall, "A", "the command's call is call-1 (the call its result names)"}}},
		{"a plain command pinned to a call that began after it", func(t *testing.T, h *History) {
			// Pinned and released alike, but the call began 2 s after the
			// command was stored (the margin is 500 ms).
			h.Requests[findRequest(t, *h, trace("A"), 0)].CallBegan = at(2_100)
		}, []want{{InvariantSameCall, "A", "began after the command"}}},
		{"an executed release naming no call", func(t *testing.T, h *History) {
			h.Requests[findRequest(t, *h, trace("H"), 1)].CallID = ""
		}, []want{{InvariantSameCall, "H", "names no call"}}},

		{"an accepted result without confirmation", func(t *testing.T, h *History) {
			i := findConfirmation(t, *h, "A")
			h.Confirmations = slices.Delete(h.Confirmations, i, i+1)
		}, []want{{InvariantConfirmed, "A", "no confirmation by the end"}}},
		{"a confirmation naming another call than the release", func(t *testing.T, h *History) {
			// Seed 685979328: a poller 25 s behind matched a release of the
			// number from an earlier call, 16 s before the command.
			h.Confirmations[findConfirmation(t, *h, "A")].Value.CallID = "call-earlier"
		}, []want{{InvariantConfirmed, "A", "names call call-earlier; the gateway released the number from call call-1"}}},
		{"two confirmations", func(t *testing.T, h *History) {
			c := h.Confirmations[findConfirmation(t, *h, "B")]
			c.Seq, c.Value.Status = 77, events.ConfirmationUnconfirmed
			h.Confirmations = append(h.Confirmations, c)
		}, []want{{InvariantConfirmed, "B", "2 confirmations"}}},
		{"a confirmation of a command not accepted", func(t *testing.T, h *History) {
			h.Confirmations = append(h.Confirmations, confirmation("D", 78, 2_000))
		}, []want{{InvariantConfirmed, "D", "no accepted result"}}},

		{"accepted without an execution", func(t *testing.T, h *History) {
			// H's second request is answered 000-007 too: nothing executed,
			// everything answered.
			h.Requests[findRequest(t, *h, trace("H"), 1)] = req(trace("H"), 900, "000-007")
		}, []want{{InvariantResultConsistent, "H", "accepted (reason \"\") but none of its 2 request(s)"}}},
		{"failed after an execution, outcome not unknown", func(t *testing.T, h *History) {
			i := findResult(t, *h, "result-J")
			h.Results[i].Value.Reason = "deadline passed"
		}, []want{{InvariantResultConsistent, "J", "result contradicts the gateway: expired"}}},

		{"a GUID in a log line", func(t *testing.T, h *History) {
			h.Logs = append(h.Logs, `{"level":"debug","header":"Guid: `+strings.ToUpper(guid)+`"}`)
		}, []want{{InvariantNoSecret, "", "Secrets[0] (36 chars) appears in 1 of Logs, first Logs[2]"}}},
		{"a password in a stream and a metric", func(t *testing.T, h *History) {
			h.Streams = append(h.Streams, `{"password":"s3cret-password"}`)
			h.Metrics = append(h.Metrics, `x{p="s3cret-password"} 1`, `y{p="s3cret-password"} 1`)
		}, []want{
			{InvariantNoSecret, "", "Secrets[1] (15 chars) appears in 1 of Streams"},
			{InvariantNoSecret, "", "Secrets[1] (15 chars) appears in 2 of Metrics"},
		}},

		{"a request no command explains", func(t *testing.T, h *History) {
			h.Requests = append(h.Requests, req(trace("nobody"), 3_000, "200-023"))
		}, []want{{InvariantKnownRequest, "", "maps to no command"}}},
		{"a request without traceparent", func(t *testing.T, h *History) {
			d := executedReq("", 3_000, "0", "call-x")
			d.Traceparent = ""
			h.Requests = append(h.Requests, d)
		}, []want{{InvariantKnownRequest, "", "no traceparent"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			tt.break_(t, &h)
			rep := Check(h)
			var got []want
			for _, v := range rep.Violations {
				got = append(got, want{v.Invariant, v.CommandID, v.Detail})
			}
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				ok = got[i].inv == tt.want[i].inv && got[i].id == tt.want[i].id && strings.Contains(got[i].detail, tt.want[i].detail)
			}
			if !ok {
				t.Fatalf("want exactly %v, got:\n%s", tt.want, rep.Table())
			}
			for _, v := range rep.Violations {
				if strings.Contains(strings.ToLower(v.Detail), guid) || strings.Contains(v.Detail, "s3cret-password") || strings.Contains(v.Detail, number) {
					t.Errorf("violation detail reveals a secret or a number: %s", v.Detail)
				}
			}
		})
	}
}

// TestCheckAllowsWhatTheGuaranteesAllow: histories near the edges that
// keep the guarantees.
func TestCheckAllowsWhatTheGuaranteesAllow(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, h *History)
	}{
		{"a request within the clock tolerance of the deadline", func(t *testing.T, h *History) {
			h.Commands[findCommand(t, *h, "A", "")].Deadline = at(107)
		}},
		{"a retry after an answered execution when the worker was killed", func(t *testing.T, h *History) {
			// The answer went to a worker killed before it recorded it: the
			// delivery that takes over sends again and finds it released.
			h.Requests = append(h.Requests, req(trace("A"), 5_000, "200-023"))
			i := findResult(t, *h, "result-A")
			h.Results[i].Value.Reason, h.Results[i].Stored = "already_released: 200-023", at(5_010)
			h.Faults = append(h.Faults, Fault{At: at(111), Kind: "worker_sigkill", Target: "worker-1"})
		}},
		{"a retry after a session error", func(t *testing.T, h *History) {
			h.Requests[findRequest(t, *h, trace("H"), 0)].RetCode = "100-006"
		}},
		{"a retry after a retcode fault", func(t *testing.T, h *History) {
			i := findRequest(t, *h, trace("H"), 0)
			h.Requests[i].RetCode, h.Requests[i].Fault = "100-007", gatewaysim.FaultRetCode
		}},
		{"accepted already released with no request (an earlier delivery started)", func(t *testing.T, h *History) {
			h.Commands = append(h.Commands, cmd("K", 2_000))
			h.Results = append(h.Results, result("K", 60, 2_100, events.StatusAccepted, "already_released: call_ended: call 1 ended", "call-k"))
			h.Confirmations = append(h.Confirmations, confirmation("K", 60, 2_500))
		}},
		{"accepted after a request with unknown outcome only", func(t *testing.T, h *History) {
			// A frozen gateway that executes later: the log has no answer yet.
			h.Requests[findRequest(t, *h, trace("H"), 1)] = req(trace("H"), 900, "")
		}},
		{"a plain command pinned to a call that began within the margin", func(t *testing.T, h *History) {
			h.Requests[findRequest(t, *h, trace("A"), 0)].CallBegan = at(100 + 500)
		}},
		{"a scoped command released from a redialed call that is its call", func(t *testing.T, h *History) {
			i := findRequest(t, *h, trace("B"), 1)
			h.Requests[i].Redial, h.Requests[i].CallGeneration = true, 2
		}},
		{"two copies sharing one trace ID", func(t *testing.T, h *History) {
			h.Commands[findCommand(t, *h, "F", "duplicate")].TraceID = trace("F")
		}},
		{"a replay with the original's trace ID", func(t *testing.T, h *History) {
			h.Commands[findCommand(t, *h, "G", "replay")].TraceID = trace("G")
			h.Requests[findRequest(t, *h, trace("G-replay"), 0)].Traceparent = tp(trace("G"))
		}},
		{"a result without Nats-Msg-Id", func(t *testing.T, h *History) {
			h.Results[findResult(t, *h, "result-A")].MsgID = ""
		}},
		{"upper-case trace IDs", func(t *testing.T, h *History) {
			i := findRequest(t, *h, trace("A"), 0)
			h.Requests[i].Traceparent = strings.ToUpper(h.Requests[i].Traceparent)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			tt.change(t, &h)
			if rep := Check(h); !rep.OK() {
				t.Fatalf("violations:\n%s", rep.Table())
			}
		})
	}
}

// A release taken from another call that began within the call state's
// trust before the request reached the gateway is the window no call
// check closes: listed, not a violation (the soak's seed 808152682: a call
// began 0.3 ms before the request arrived).
func TestCheckListsTheWindow(t *testing.T) {
	h := good()
	i := findRequest(t, h, trace("B"), 1)
	h.Requests[i].CallID, h.Requests[i].CallBegan = "call-2c", h.Requests[i].At.Add(-300*time.Microsecond)
	rep := Check(h)
	if !rep.OK() || len(rep.InWindow) != 1 || rep.InWindow[0].CommandID != "B" {
		t.Fatalf("want no violation and B in the window, got %+v:\n%s", rep.InWindow, rep.Table())
	}
	if tab := rep.Table(); !strings.Contains(tab, "1 release(s) in the window no call check closes") || !strings.Contains(tab, "300µs before the request") {
		t.Errorf("the table does not list the window:\n%s", tab)
	}
	if rep := CheckWith(h, Options{CheckWindow: 100 * time.Microsecond, ClockTolerance: time.Nanosecond}); rep.OK() {
		t.Errorf("with a 100 µs trust the same release is a violation:\n%s", rep.Table())
	}
}

// A slow gateway widens the window by twice its latency (the call-info
// query's answer and the disconnect each come that much later), while it
// is on; a call that began earlier than that is still a violation.
func TestCheckWindowUnderASlowGateway(t *testing.T) {
	h := good()
	i := findRequest(t, h, trace("B"), 1)
	h.Requests[i].CallID, h.Requests[i].CallBegan = "call-2c", h.Requests[i].At.Add(-750*time.Millisecond)
	if rep := Check(h); rep.OK() {
		t.Fatalf("without a slow gateway a call that began 750 ms before is a violation:\n%s", rep.Table())
	}
	h.Faults = append(h.Faults, Fault{At: h.Requests[i].At.Add(-2 * time.Second), Kind: "gateway_slow", Target: "latency=800ms",
		Until: h.Requests[i].At.Add(time.Second)})
	if rep := Check(h); !rep.OK() || len(rep.InWindow) != 1 {
		t.Fatalf("under 800 ms of latency it is in the window:\n%s", rep.Table())
	}
	h.Requests[i].CallBegan = h.Requests[i].At.Add(-3 * time.Second)
	if rep := Check(h); rep.OK() {
		t.Fatalf("a call that began 3 s before is a violation even then:\n%s", rep.Table())
	}
}

// A plain command pinned to a call that ends between the check and the
// request: the gateway releases the number from the call under it (held,
// the same customer) that just became the agent's last call. Seed
// 685979328: call 3128 ended 158 ms before the request reached the
// gateway, and held call 3117, which began 1.9 s before, was released.
func TestCheckWindowWhenTheCallAboveEnded(t *testing.T) {
	h := good()
	i := findRequest(t, h, trace("B"), 1)
	d := &h.Requests[i]
	pinned := d.CallID
	d.CallID, d.CallBegan, d.CallLastSince = "call-2held", d.At.Add(-2*time.Second), d.At.Add(-150*time.Millisecond)
	// The pinned call's own end confirms it, as its result names it (seed
	// 685979328 again: soak-011653).
	h.Confirmations[findConfirmation(t, h, "B")].Value.CallID = pinned
	if rep := Check(h); !rep.OK() || len(rep.InWindow) != 1 || !strings.Contains(rep.InWindow[0].Detail, "became the agent's last call") {
		t.Fatalf("a held call that became the last call 150 ms before is in the window:\n%s", rep.Table())
	}
	h.Confirmations[findConfirmation(t, h, "B")].Value.CallID = "call-x"
	if rep := Check(h); rep.OK() {
		t.Fatalf("a confirmation naming neither call is a violation:\n%s", rep.Table())
	}
	h.Confirmations[findConfirmation(t, h, "B")].Value.CallID = pinned
	d.CallLastSince = d.At.Add(-3 * time.Second)
	if rep := Check(h); rep.OK() {
		t.Fatalf("one that became the last call 3 s before is a violation:\n%s", rep.Table())
	}
}

func TestCheckWithOptions(t *testing.T) {
	h := good()
	h.Commands[findCommand(t, h, "A", "")].Deadline = at(100) // 10 ms late
	if rep := CheckWith(h, Options{ClockTolerance: 10 * time.Millisecond}); !rep.OK() {
		t.Errorf("10 ms tolerance: %s", rep.Table())
	}

	// I was accepted 5 s before the end: pending with the default window,
	// missing with a 1 s one.
	rep := CheckWith(good(), Options{ConfirmWithin: time.Second})
	if rep.PendingAtEnd != 0 || len(rep.Violations) != 1 || rep.Violations[0].CommandID != "I" || rep.Violations[0].Invariant != InvariantConfirmed {
		t.Errorf("1 s confirm window: %s", rep.Table())
	}

	// A retry excused by a worker_sigkill is not excused when no fault
	// kind may lose answers.
	h = good()
	h.Requests = append(h.Requests, req(trace("A"), 5_000, "200-023"))
	h.Faults = append(h.Faults, Fault{At: at(111), Kind: "worker_sigkill"})
	if rep := Check(h); !rep.OK() {
		t.Errorf("default lost-answer faults: %s", rep.Table())
	}
	if rep := CheckWith(h, Options{LostAnswerFaults: []string{}}); len(rep.Violations) != 1 || rep.Violations[0].Invariant != InvariantNotTwice {
		t.Errorf("no lost-answer faults: %s", rep.Table())
	}
	// A fault of a listed kind that ended before the answered request does
	// not excuse.
	h.Faults = []Fault{{At: at(0), Until: at(50), Kind: "nats_restart"}}
	h.Requests[findRequest(t, h, trace("A"), 0)].At = at(1_500)
	if rep := Check(h); len(rep.Violations) != 1 || rep.Violations[0].Invariant != InvariantNotTwice {
		t.Errorf("a fault long before: %s", rep.Table())
	}
}

func TestTableListsAtMostFifty(t *testing.T) {
	h := good()
	for i := range 60 {
		h.Requests = append(h.Requests, req(trace(fmt.Sprintf("nobody-%d", i)), 3_000+i, "200-023"))
	}
	rep := Check(h)
	if len(rep.Violations) != 60 {
		t.Fatalf("%d violations, want 60", len(rep.Violations))
	}
	s := rep.Table()
	if n := strings.Count(s, "\n- known_request: "); n != MaxListed {
		t.Errorf("%d listed, want %d:\n%s", n, MaxListed, s)
	}
	for _, w := range []string{"soak check, seed 42: 12 commands, 72 requests, 1 faults", "| invariant | checked | violations |", "| known_request | 72 | 60 |", "FAIL: 60 violation(s)", "... 10 more\n"} {
		if !strings.Contains(s, w) {
			t.Errorf("table lacks %q:\n%s", w, s)
		}
	}
}

func TestViolationsInInvariantOrder(t *testing.T) {
	h := good()
	h.Logs = append(h.Logs, guid)                                    // no_secret
	h.Requests = append(h.Requests, req(trace("A"), 150, "200-023")) // not_twice
	h.Results = append(h.Results, h.Results[0])                      // one_result
	rep := Check(h)
	var got []string
	for _, v := range rep.Violations {
		got = append(got, v.Invariant)
	}
	if want := []string{InvariantOneResult, InvariantNotTwice, InvariantNoSecret}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v\n%s", got, want, rep.Table())
	}
}

func TestTraceID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", ""},
	}
	for _, tt := range tests {
		if got := traceID(tt.in); got != tt.want {
			t.Errorf("traceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecretScanner(t *testing.T) {
	s := newSecretScanner([]string{"", "abc", "Secret-1", "secret-12", guid})
	text := "x SECRET-12 y secret-1 z " + guid + guid
	ms := s.find(text)
	if len(ms) != 4 {
		t.Fatalf("matches %v", ms)
	}
	got := s.redact(text, ms)
	if want := "x <Secrets[3]> y <Secrets[2]> z <Secrets[4]><Secrets[4]>"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
	if ms := s.find("abc abc"); len(ms) != 0 {
		t.Errorf("a short secret matched: %v", ms)
	}
}
