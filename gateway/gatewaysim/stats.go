package gatewaysim

import (
	"slices"
	"strconv"
	"time"
)

// Disconnect records one disconnect request.
type Disconnect struct {
	AgentID int       `json:"agent_id"` // 0 when the path's agent ID is not a number
	Number  string    `json:"number"`
	At      time.Time `json:"at"` // arrival time, by Config.Now
	// RetCode is the business outcome: what the client was answered, or
	// would have been for the *_after faults. "" when a 5xx, reset or
	// timeout fault answered instead.
	RetCode  string `json:"retcode"`
	Executed bool   `json:"executed"` // a party was released
	Fault    Fault  `json:"fault,omitempty"`
	// Traceparent is the request's W3C traceparent header, as sent ("" when
	// none), so tests can follow a command's trace to the gateway.
	Traceparent string `json:"traceparent,omitempty"`

	// The call the party was released from, set when Executed: its ID,
	// its generation for its customer (1 for the customer's first call in
	// this simulator, 2 for the next one, e.g. a redial; 0 for an
	// inner-help call), whether a redial started it (automatic or
	// [Sim.Redial]) and when it was answered. With them a test proves that
	// no party of a redialed call was released by a command meant for the
	// call before it. CallLastSince is when that call became the agent's
	// last call, the one a release applies to: when it began, or later,
	// when the call after it (it held) ended.
	CallID         string    `json:"call_id,omitempty"`
	CallGeneration int       `json:"call_generation,omitempty"`
	Redial         bool      `json:"redial,omitempty"`
	CallBegan      time.Time `json:"call_began,omitzero"`
	CallLastSince  time.Time `json:"call_last_since,omitzero"`
}

// recordArrival appends a record for a disconnect request and returns its
// index, so records stay in arrival order.
func (s *Sim) recordArrival(agentID, number, traceparent string) int {
	id, _ := strconv.Atoi(agentID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, Disconnect{AgentID: id, Number: number, At: s.now(), Traceparent: traceparent})
	return len(s.records) - 1
}

func (s *Sim) recordOutcome(i int, rep reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &s.records[i]
	d.RetCode, d.Executed, d.Fault = rep.retcode, rep.executed, rep.fault
	if rep.executed {
		c := rep.released
		d.CallID, d.CallGeneration, d.Redial, d.CallBegan = c.id, c.gen, c.redial, c.began
		d.CallLastSince = c.last
	}
}

// Executed returns the number of disconnect requests that released a
// party (also those answered by a *_after fault). [Sim.CustomerHangup]
// does not count.
func (s *Sim) Executed() int64 { return s.executed.Load() }

// Disconnects returns a copy of every disconnect request received, in
// arrival order. A request still in progress has an empty RetCode. The
// records stay in memory for the simulator's lifetime (about 100 bytes
// each).
func (s *Sim) Disconnects() []Disconnect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// Overlaps returns how often a non-poll request for an agent arrived while
// another one for the same agent was in progress (answered 000-007).
func (s *Sim) Overlaps() int64 { return s.overlaps.Load() }

// Polls returns the number of authenticated polls for an agent.
func (s *Sim) Polls(agentID int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.agents[agentID]; a != nil {
		return a.polls
	}
	return 0
}

// ConcurrentPolls returns how often a poll arrived while another poll for
// the same agent was held.
func (s *Sim) ConcurrentPolls() int64 { return s.concurrentPolls.Load() }

// SignedOut returns how many agents were signed out because they were not
// polled for Config.NoPollSignOut.
func (s *Sim) SignedOut() int64 { return s.signedOut.Load() }

// Stats is a snapshot of the simulator's counters (GET /simulator/stats).
type Stats struct {
	Executed           int64 `json:"executed"`
	Disconnects        int   `json:"disconnects"`
	Overlaps           int64 `json:"overlaps"`
	ConcurrentPolls    int64 `json:"concurrent_polls"`
	SignedOutByTimeout int64 `json:"signed_out_by_timeout"`
	Agents             int   `json:"agents"`
	SignedIn           int   `json:"signed_in"`
	Polls              int64 `json:"polls"`
	// Redials counts calls started by a redial; ExecutedOnRedial the
	// executed disconnects that released a party of such a call.
	Redials          int64 `json:"redials"`
	ExecutedOnRedial int64 `json:"executed_on_redial"`
	// CallInfoQueries counts authenticated call-data queries (callinfo,
	// callinfobycallid, holdlist).
	CallInfoQueries int64 `json:"callinfo_queries"`
}

// Stats returns the current counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	st := Stats{Disconnects: len(s.records), Agents: len(s.agents)}
	for _, a := range s.agents {
		if a.signedIn {
			st.SignedIn++
		}
	}
	s.mu.Unlock()
	st.Executed = s.executed.Load()
	st.Overlaps = s.overlaps.Load()
	st.ConcurrentPolls = s.concurrentPolls.Load()
	st.SignedOutByTimeout = s.signedOut.Load()
	st.Polls = s.polls.Load()
	st.Redials = s.redials.Load()
	st.ExecutedOnRedial = s.onRedial.Load()
	st.CallInfoQueries = s.queries.Load()
	return st
}
