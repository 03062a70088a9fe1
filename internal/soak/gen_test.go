//go:build soak

package soak

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"time"
)

// The schedule of a run is decided from the seed before anything starts:
// the ops (commands and call and session changes) and two lanes of faults
// (processes and NATS; gateway, sessions and requester clocks), each with
// its time offset and its random parameters. What an op acts on at run
// time (the agent's current call, the dead letters so far) comes from the
// system; which op runs when, on which agent, with which variant, does not.

// Agents are 101..101+numAgents-1.
const (
	firstAgent = 101
	numAgents  = 50
)

// op is one scheduled operation of the generator.
type op struct {
	At    time.Duration // after the start of the run
	Kind  string
	Agent int
	A, B  int     // variant and parameters, meaning per kind
	F     float64 // a fraction, meaning per kind
	Ref   int     // an earlier op (duplicates, republished), -1 for none
}

// faultOp is one scheduled fault.
type faultOp struct {
	At     time.Duration
	Kind   string
	Target int           // worker/poller 0 or 1, or the agent
	Dur    time.Duration // how long the fault lasts (the pause of a kill)
	Rate   float64
	Param  time.Duration // slow: latency; skew: clock offset
	Seed   int64
}

// schedule is everything a run will do.
type schedule struct {
	Rate   int // ops per second
	Ops    []op
	Lanes  [2][]faultOp
	Redial time.Duration // the initial automatic redial delay
}

type weighted struct {
	kind string
	w    float64
}

// opWeights are the generator's mix (relative weights).
var opWeights = []weighted{
	{"plain", 20}, {"scoped", 16}, {"stale_scoped", 3}, {"wrong_party", 2}, {"guid_override", 1},
	{"dup_now", 5}, {"dup_later", 4}, {"republished", 3},
	{"expired", 4}, {"about_to_expire", 4}, {"malformed", 4}, {"hostile", 4}, {"hostile_callid", 1},
	{"skewed_ok", 3}, {"skewed_bad", 2}, {"replay", 1.5},
	{"call_start", 6}, {"call_end", 6}, {"redial", 2}, {"hold", 2}, {"innerhelp", 2}, {"confjoin", 1.5},
	{"hangup", 1}, {"signout", 0.6}, {"signin", 1.2}, {"redial_delay", 0.3},
}

// laneWeights: lane 0 processes and NATS, lane 1 gateway, sessions, clocks.
var laneWeights = [2][]weighted{
	{{"worker_sigkill", 3}, {"worker_sigterm", 2}, {"poller_sigkill", 2}, {"poller_sigterm", 1}, {"nats_restart", 1.2}},
	{{"gateway_5xx", 1}, {"gateway_reset", 1}, {"gateway_timeout", 1}, {"gateway_retcode", 1},
		{"gateway_reset_after", 1}, {"gateway_timeout_after", 1}, {"gateway_mixed", 1.5}, {"gateway_queries", 1},
		{"gateway_slow", 1.5}, {"session_invalidated", 1.5}, {"session_forcelogout", 1}, {"requester_skew", 1.5}},
}

func pick(r *rand.Rand, ws []weighted) string {
	total := 0.0
	for _, w := range ws {
		total += w.w
	}
	x := r.Float64() * total
	for _, w := range ws {
		if x < w.w {
			return w.kind
		}
		x -= w.w
	}
	return ws[len(ws)-1].kind
}

// isCommand reports whether an op of this kind publishes a valid,
// well-formed command that can be duplicated or republished.
func isCommand(kind string) bool {
	switch kind {
	case "plain", "scoped", "stale_scoped", "wrong_party", "expired", "about_to_expire", "skewed_ok":
		return true
	}
	return false
}

// newSchedule decides the run's schedule from seed for a run of d.
func newSchedule(seed int64, d time.Duration) schedule {
	root := rand.New(rand.NewPCG(uint64(seed), 0x50a4))
	s := schedule{Rate: 20 + root.IntN(21), Redial: time.Second + time.Duration(root.IntN(2001))*time.Millisecond}
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	var commands []int // indexes of ops that publish a valid command
	for at := time.Duration(0); ; {
		at += time.Duration(r.ExpFloat64() / float64(s.Rate) * float64(time.Second))
		if at >= d {
			break
		}
		o := op{At: at, Kind: pick(r, opWeights), Agent: firstAgent + r.IntN(numAgents), A: r.IntN(1 << 20), B: r.IntN(1 << 20), F: r.Float64(), Ref: -1}
		switch o.Kind {
		case "dup_later", "republished":
			if len(commands) == 0 {
				o.Kind = "plain"
				break
			}
			back := min(len(commands), 300)
			o.Ref = commands[len(commands)-1-r.IntN(back)]
		}
		if isCommand(o.Kind) {
			commands = append(commands, len(s.Ops))
		}
		s.Ops = append(s.Ops, o)
	}
	for lane := range s.Lanes {
		lr := rand.New(rand.NewPCG(uint64(seed), uint64(10+lane)))
		at := 4 * time.Second
		for {
			at += time.Duration(2000+lr.IntN(8000)) * time.Millisecond
			if at >= d-3*time.Second {
				break
			}
			f := faultOp{At: at, Kind: pick(lr, laneWeights[lane]), Target: lr.IntN(2),
				Dur:  time.Duration(3000+lr.IntN(7000)) * time.Millisecond,
				Rate: 0.1 + 0.4*lr.Float64(), Seed: lr.Int64()}
			switch f.Kind {
			case "worker_sigkill", "worker_sigterm", "poller_sigkill", "poller_sigterm":
				f.Dur = time.Duration(300+lr.IntN(2700)) * time.Millisecond
			case "nats_restart":
				f.Dur = time.Duration(1000+lr.IntN(2000)) * time.Millisecond
			case "gateway_slow":
				f.Param = time.Duration(100+lr.IntN(1400)) * time.Millisecond
			case "session_invalidated", "session_forcelogout":
				f.Target = firstAgent + lr.IntN(numAgents)
			case "requester_skew":
				switch lr.IntN(3) {
				case 0:
					f.Param = -time.Duration(1000+lr.IntN(9000)) * time.Millisecond // behind
				case 1:
					f.Param = time.Duration(500+lr.IntN(3500)) * time.Millisecond // ahead, within the allowed 5 s
				default:
					f.Param = time.Duration(6500+lr.IntN(8500)) * time.Millisecond // ahead, beyond it
				}
			}
			s.Lanes[lane] = append(s.Lanes[lane], f)
			at += f.Dur
		}
	}
	return s
}

// fingerprint is a short hash of the whole schedule: two runs with the
// same seed and duration print the same one.
func (s schedule) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d %v\n", s.Rate, s.Redial)
	for _, o := range s.Ops {
		fmt.Fprintf(h, "%+v\n", o)
	}
	for _, l := range s.Lanes {
		for _, f := range l {
			fmt.Fprintf(h, "%+v\n", f)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:16]
}

// summary counts the ops and faults by kind.
func (s schedule) summary() string {
	n := map[string]int{}
	for _, o := range s.Ops {
		n[o.Kind]++
	}
	for _, l := range s.Lanes {
		for _, f := range l {
			n["fault:"+f.Kind]++
		}
	}
	return fmt.Sprint(n)
}
