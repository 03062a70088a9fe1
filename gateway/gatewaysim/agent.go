package gatewaysim

import (
	"strconv"
	"time"
)

// Event is one agent event as delivered by the long poll.
type Event struct {
	EventType    string `json:"eventType"`
	WorkNo       string `json:"workNo"`
	Content      any    `json:"content"`
	EventGenTime int64  `json:"eventGenTime"` // ms since the Unix epoch
}

type issuedGUID struct {
	value  string
	issued time.Time
}

// agent is one agent's state. All fields are guarded by Sim.mu.
type agent struct {
	id       int
	workNo   string
	password string // "" accepts any password
	phone    string // soft-phone number bound at sign-in ("phonenum"), or ""

	signedIn  bool
	session   uint64 // incremented by every sign-in
	loginTime time.Time
	guids     []issuedGUID // the last one is current

	lastPoll time.Time
	polling  int // polls being held right now
	polls    int64

	queue []Event
	muted bool          // events are dropped instead of queued (MuteEvents)
	wake  chan struct{} // closed when the queue or session changes
	calls []*call       // the last one is the agent's "last call"

	lastEnded   *call       // the agent's most recently ended call, or nil
	redialTimer *time.Timer // the pending automatic redial, or nil
}

// agentLocked returns agent id, creating a signed-out one when needed.
func (s *Sim) agentLocked(id int, password string) *agent {
	a := s.agents[id]
	if a == nil {
		a = &agent{id: id, workNo: strconv.Itoa(id), password: password}
		s.agents[id] = a
	}
	return a
}

// AddAgent creates a signed-out agent. An empty password accepts any
// password at sign-in. It does nothing when the agent exists.
func (s *Sim) AddAgent(id int, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agentLocked(id, password)
}

// QueueEvent appends a raw event to an agent's queue (creating the agent
// when needed). For tests of event handling.
func (s *Sim) QueueEvent(agentID int, eventType string, content any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushLocked(s.agentLocked(agentID, ""), eventType, content)
}

// MuteEvents makes the gateway lose every event of the agent while muted is
// true: a disconnect then succeeds but raises no release event, as when an
// event is lost on its way to the client. For tests of confirmation timeouts.
func (s *Sim) MuteEvents(agentID int, muted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agentLocked(agentID, "").muted = muted
}

func (s *Sim) pushLocked(a *agent, eventType string, content any) {
	if a.muted {
		return
	}
	a.queue = append(a.queue, Event{
		EventType:    eventType,
		WorkNo:       a.workNo,
		Content:      content,
		EventGenTime: s.now().UnixMilli(),
	})
	a.signal()
}

// signal wakes every poll waiting on the agent.
func (a *agent) signal() {
	if a.wake != nil {
		close(a.wake)
		a.wake = nil
	}
}

// waitChan returns the channel that the next signal closes.
func (a *agent) waitChan() <-chan struct{} {
	if a.wake == nil {
		a.wake = make(chan struct{})
	}
	return a.wake
}

func (a *agent) pop() (Event, bool) {
	if len(a.queue) == 0 {
		return Event{}, false
	}
	ev := a.queue[0]
	a.queue[0] = Event{}
	a.queue = a.queue[1:]
	if len(a.queue) == 0 {
		a.queue = nil
	}
	return ev, true
}
