// Package metrics defines callcontrol's Prometheus metrics: one [Metrics]
// per process, registered on a registry the caller owns (never the global
// default) and passed to the worker and the poller in their Config. Every
// collector and every label value is created once, in [New]; labels come
// from fixed sets (command status, gateway class, operation) and the
// gateway's retcode, bounded by [Metrics.CommandDone]. No agent ID, number,
// GUID or command ID is ever a label.
//
// All methods are safe for concurrent use and do nothing on a nil
// *Metrics, so a component without metrics calls them unconditionally.
package metrics

import (
	"errors"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name.
const Namespace = "callcontrol"

// Op is the gateway operation a request metric is about.
type Op int

// The gateway operations measured.
const (
	OpDisconnect Op = iota // the worker's POST .../disconnect
	OpPoll                 // the poller's GET agentevent (a long poll)
	OpCallInfo             // the worker's GET calldata/.../callinfo (a call check)
	numOps
)

// String returns "disconnect", "poll" or "callinfo", the value of the op label.
func (o Op) String() string {
	switch o {
	case OpPoll:
		return "poll"
	case OpCallInfo:
		return "callinfo"
	}
	return "disconnect"
}

// classes are the gateway.Class values, in order, for the class label.
var classes = []gateway.Class{gateway.ClassSuccess, gateway.ClassAlreadyDone, gateway.ClassTransient,
	gateway.ClassLimited, gateway.ClassSession, gateway.ClassPermanent}

// Buckets of the histograms, in seconds.
var (
	// gatewayBuckets span a fast disconnect (ms) to a long poll's hold (~10
	// s) and its timeout (20 s).
	gatewayBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30}
	// latencyBuckets span issued_at to accepted or released: normally well
	// under a second, at most a command's TTL (default 30 s, at most 1 h).
	latencyBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60, 300, 3600}
	// marginBuckets focus on a small margin: a delivery that came within a
	// second of AckWait (or past it: le="0") was kept alive by InProgress
	// heartbeats only.
	marginBuckets = []float64{0, .1, .25, .5, 1, 2.5, 5, 10, 15, 20, 25, 30, 60, 120}
	// windowBuckets span the call check's window: a fresh call state and a
	// fast gateway (ms) to a slow gateway's request deadline (seconds).
	windowBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .3, .5, .75, 1, 2.5, 5, 10}
)

// Sources of a passed call check, the source label of
// call_check_window_seconds.
const (
	CheckState    = "state"     // the poller's live call state
	CheckCallInfo = "call_info" // the gateway's call-info query
)

// Metrics holds callcontrol's collectors. Create it with [New].
type Metrics struct {
	commands       *prometheus.CounterVec // status, retcode
	retcodes       *labelSet
	acceptLatency  prometheus.Histogram
	confirmations  [2]prometheus.Counter // confirmed, unconfirmed
	confirmLatency prometheus.Histogram
	pending        prometheus.Gauge
	agentsOwned    prometheus.Gauge
	gwRequests     [numOps][]prometheus.Counter // by class index
	gwDuration     [numOps]prometheus.Observer
	pollErrors     []prometheus.Counter // by class index
	sessionErrors  [numOps]prometheus.Counter
	rotations      prometheus.Counter
	badEventTimes  prometheus.Counter
	callWrites     map[string]prometheus.Counter // by outcome
	ackWaitMargin  prometheus.Histogram
	checkWindow    map[string]prometheus.Observer // by source
	checkToAnswer  prometheus.Histogram
	gw             gatewaySeen
}

// New creates the collectors and registers them on reg. It fails if reg
// already holds a collector of the same name (one Metrics per registry).
func New(reg prometheus.Registerer) (*Metrics, error) {
	commands := counterVec("commands_total", "Commands that ended (a result was published and the message "+
		"acknowledged), by result status and gateway retcode. A result replayed for a redelivered command is not counted again.",
		"status", "retcode")
	conf := counterVec("confirmations_total", "Confirmations of accepted disconnects published, by status "+
		"(confirmed: a release event matched; unconfirmed: none in time).", "status")
	reqs := counterVec("gateway_requests_total", "Gateway requests, by operation and the class of the gateway's answer "+
		"(success, already_done, transient, limited, session, permanent). already_done is a 200-023/200-024 answer; "+
		"the command it belongs to may still end failed (see commands_total).", "op", "class")
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "gateway_request_duration_seconds",
		Help: "Duration of gateway requests, by operation (a poll includes the gateway's hold of up to ~10 s).", Buckets: gatewayBuckets}, []string{"op"})
	pollErr := counterVec("poll_errors_total", "Failed event polls, by class (transient, limited, session, permanent).", "class")
	cw := counterVec("call_state_writes_total", "Writes of agents' live call state (bucket callcontrol_calls) by the poller, by outcome "+
		"(written; fenced: another poller holds the agent now; failed: NATS did not store it, retried).", "outcome")
	window := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "call_check_window_seconds",
		Help: "The window no call check closes (README \"Call scope\"): from the moment the information a passed check relied on was " +
			"true (the call state's observed_at, or the sending of the call-info query) to the answer to the disconnect sent on it, " +
			"by source (state, call_info).", Buckets: windowBuckets}, []string{"source"})
	sess := counterVec("session_errors_total", "Gateway answers saying the session (GUID) is not valid, by operation.", "op")
	m := &Metrics{
		commands:       commands,
		retcodes:       newLabelSet(maxRetcodes),
		acceptLatency:  histogram("accept_latency_seconds", "Time from a command's issued_at to its acceptance (the gateway executed it).", latencyBuckets),
		confirmations:  [2]prometheus.Counter{conf.WithLabelValues("confirmed"), conf.WithLabelValues("unconfirmed")},
		confirmLatency: histogram("confirm_latency_seconds", "Time from a command's issued_at to the release event that confirmed it.", latencyBuckets),
		pending: gauge("pending_confirmations", "Accepted disconnects waiting for their release event "+
			"(the pending bucket as this poller sees it; every replica sees all of them)."),
		agentsOwned: gauge("poller_agents_owned", "Agents whose poll lease this poller replica holds."),
		rotations:   counter("guid_rotations_total", "Session GUIDs the gateway rotated (Set-GUID, AUTHMODE 2) that the poller stored."),
		badEventTimes: counter("event_gen_time_unparsed_total", "Agent events whose eventGenTime did not parse: republished with "+
			"generated_at_unparsed and the time received."),
		ackWaitMargin: histogram("ack_wait_margin_seconds", "AckWait minus the time a delivery took from fetch to acknowledgement; "+
			"at or below 0 only InProgress heartbeats kept it alive.", marginBuckets),
		checkToAnswer: histogram("call_check_to_answer_seconds", "From a passed call check to the answer to the disconnect sent on it: "+
			"the part of call_check_window_seconds after the check.", windowBuckets),
		checkWindow: map[string]prometheus.Observer{CheckState: window.WithLabelValues(CheckState), CheckCallInfo: window.WithLabelValues(CheckCallInfo)},
		pollErrors:  make([]prometheus.Counter, len(classes)),
		callWrites:  map[string]prometheus.Counter{},
	}
	for _, o := range callWriteOutcomes {
		m.callWrites[o] = cw.WithLabelValues(o)
	}
	for _, st := range []string{"accepted", "rejected", "failed", "expired"} {
		commands.WithLabelValues(st, "") // the series exist from the start
	}
	for op := range numOps {
		m.gwDuration[op] = dur.WithLabelValues(op.String())
		m.sessionErrors[op] = sess.WithLabelValues(op.String())
		m.gwRequests[op] = make([]prometheus.Counter, len(classes))
		for i, c := range classes {
			m.gwRequests[op][i] = reqs.WithLabelValues(op.String(), c.String())
		}
	}
	for i, c := range classes {
		if c != gateway.ClassSuccess && c != gateway.ClassAlreadyDone {
			m.pollErrors[i] = pollErr.WithLabelValues(c.String())
		}
	}
	lastAnswer := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "gateway_last_answer_timestamp_seconds",
		Help: "Unix time of the last HTTP answer from the gateway (0: none yet)."}, m.gw.lastAnswerSeconds)
	for _, c := range []prometheus.Collector{commands, m.acceptLatency, conf, m.confirmLatency, m.pending, m.agentsOwned,
		reqs, dur, pollErr, sess, m.rotations, m.badEventTimes, m.ackWaitMargin, lastAnswer, cw,
		window, m.checkToAnswer} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
}

// CommandDone counts a command that ended with status and the gateway's
// retcode ("" when none). A retcode that is not "0" or of the gateway's
// form "NNN-NNN", or that would be past the 32nd distinct one, is counted as
// "other", so a misbehaving gateway cannot grow the label set.
func (m *Metrics) CommandDone(status, retcode string) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(status, m.retcodes.label(retcode)).Inc()
}

// Accepted observes the time from a command's issued_at to its acceptance.
func (m *Metrics) Accepted(issuedAt, acceptedAt time.Time) {
	if m == nil || issuedAt.IsZero() {
		return
	}
	m.acceptLatency.Observe(max(acceptedAt.Sub(issuedAt), 0).Seconds())
}

// Confirmed counts a published confirmation and, when confirmed, observes
// the time from the command's issued_at to the release event (when both
// are known).
func (m *Metrics) Confirmed(confirmed bool, issuedAt, releasedAt time.Time) {
	if m == nil {
		return
	}
	if !confirmed {
		m.confirmations[1].Inc()
		return
	}
	m.confirmations[0].Inc()
	if !issuedAt.IsZero() && !releasedAt.IsZero() {
		m.confirmLatency.Observe(max(releasedAt.Sub(issuedAt), 0).Seconds())
	}
}

// SetPending sets the number of accepted disconnects waiting for a release.
func (m *Metrics) SetPending(n int) {
	if m != nil {
		m.pending.Set(float64(n))
	}
}

// SetAgentsOwned sets the number of agents this poller holds the lease of.
func (m *Metrics) SetAgentsOwned(n int) {
	if m != nil {
		m.agentsOwned.Set(float64(n))
	}
}

// GatewayRequest records one gateway request of op that took took and
// ended with err (nil: success): its class, its duration, a session error
// or a failed poll, and whether the gateway answered (see
// [Metrics.GatewayUnanswered]).
func (m *Metrics) GatewayRequest(op Op, took time.Duration, err error) {
	if m == nil || op < 0 || op >= numOps {
		return
	}
	class := gateway.Classify(err)
	i := classIndex(class)
	m.gwRequests[op][i].Inc()
	m.gwDuration[op].Observe(took.Seconds())
	if class == gateway.ClassSession {
		m.sessionErrors[op].Inc()
	}
	if op == OpPoll && m.pollErrors[i] != nil {
		m.pollErrors[i].Inc()
	}
	var ge *gateway.Error
	switch {
	case err == nil, errors.As(err, &ge) && ge.StatusCode != 0:
		m.gw.answered(time.Now())
	case errors.Is(err, gateway.ErrInvalidInput): // never sent: says nothing about the gateway
	default:
		m.gw.unanswered(time.Now())
	}
}

func classIndex(c gateway.Class) int {
	for i, k := range classes {
		if k == c {
			return i
		}
	}
	return len(classes) - 1 // permanent
}

// CallChecked observes the window of a disconnect sent on a passed call
// check from source (CheckState or CheckCallInfo): the information was
// true at asOf, the check passed at checked, the gateway answered at
// answered.
func (m *Metrics) CallChecked(source string, asOf, checked, answered time.Time) {
	if m == nil || asOf.IsZero() || m.checkWindow[source] == nil {
		return
	}
	m.checkWindow[source].Observe(max(answered.Sub(asOf), 0).Seconds())
	m.checkToAnswer.Observe(max(answered.Sub(checked), 0).Seconds())
}

// GUIDRotated counts a rotated GUID the poller stored.
func (m *Metrics) GUIDRotated() {
	if m != nil {
		m.rotations.Inc()
	}
}

// EventTimeUnparsed counts an event whose eventGenTime did not parse.
func (m *Metrics) EventTimeUnparsed() {
	if m != nil {
		m.badEventTimes.Inc()
	}
}

// callWriteOutcomes are the outcome label values of call_state_writes_total.
var callWriteOutcomes = []string{"written", "fenced", "failed"}

// CallStateWrite counts one write of an agent's call state; outcome is
// "written", "fenced" or "failed" (anything else is not counted).
func (m *Metrics) CallStateWrite(outcome string) {
	if m == nil {
		return
	}
	if c, ok := m.callWrites[outcome]; ok {
		c.Inc()
	}
}

// AckWaitMargin observes AckWait minus the time one delivery took.
func (m *Metrics) AckWaitMargin(d time.Duration) {
	if m != nil {
		m.ackWaitMargin.Observe(d.Seconds())
	}
}

// GatewayUnanswered returns how long, as of now, gateway requests have
// been ending without an HTTP answer (a transport error or a timeout)
// with no answer in between, or 0 when the last request that ended got an
// answer or no request has ended yet. A nil Metrics returns 0.
func (m *Metrics) GatewayUnanswered(now time.Time) time.Duration {
	if m == nil {
		return 0
	}
	return m.gw.failingFor(now)
}
