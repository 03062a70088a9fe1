package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/kvwatch"
	"github.com/nats-io/nats.go/jetstream"
)

// calls is the worker's view of the agents' live call state
// ([events.BucketCalls], written by each agent's poller owner): a watched
// in-memory map, so checking a command's call costs no round trip while
// the state is fresh.
type calls struct {
	kv     jetstream.KeyValue
	mu     sync.RWMutex
	states map[int]*events.CallState
	// released is when this worker last had the gateway release a party
	// of the agent: a state observed before that does not know what the
	// release did to the agent's calls (a held call may now be its last).
	released map[int]time.Time
	ready    chan struct{}
}

func newCalls(kv jetstream.KeyValue) *calls {
	return &calls{kv: kv, states: make(map[int]*events.CallState), released: make(map[int]time.Time), ready: make(chan struct{})}
}

// lookup returns agent's state, or nil. The state is shared: read only.
func (c *calls) lookup(agent int) *events.CallState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.states[agent]
}

// current returns agent's state if it may be trusted at now (see fresh),
// else nil with whatever state there is, for its start times.
func (c *calls) current(agent int, now time.Time, maxAge time.Duration) (st *events.CallState, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st = c.states[agent]
	return st, fresh(st, now, maxAge) && st.ObservedAt.After(c.released[agent])
}

// releasedAt records that a party of agent was released at t.
func (c *calls) releasedAt(agent int, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.released) > 100_000 { // bounded: forget the old marks
		clear(c.released)
	}
	c.released[agent] = t
}

func (c *calls) run(ctx context.Context) {
	kvwatch.Follow(ctx, c.kv, "", kvwatch.View{Apply: c.apply, Ready: func() { closeOnce(c.ready) }})
}

func (c *calls) apply(e jetstream.KeyValueEntry) {
	agent, err := strconv.Atoi(e.Key())
	if err != nil {
		return
	}
	var st events.CallState
	del := e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &st) != nil
	c.mu.Lock()
	defer c.mu.Unlock()
	if del {
		delete(c.states, agent)
	} else {
		c.states[agent] = &st
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// scopeError says why a command's call is not (or cannot be shown to be)
// the agent's last call with the number in it: the command is not sent.
// reason is one of the events.ReasonCall* / ReasonNotAParty prefixes.
type scopeError struct {
	reason string
	detail string
	cause  error // the call-info query's error, for call_unknown
}

func (e *scopeError) Error() string { return e.reason + ": " + e.detail }

// unknownScope: neither the call state nor the gateway could tell; the
// attempt waits and tries again, within the deadline.
func (e *scopeError) unknown() bool { return e.reason == events.ReasonCallUnknown }

func callEnded(format string, a ...any) *scopeError {
	return &scopeError{reason: events.ReasonCallEnded, detail: fmt.Sprintf(format, a...)}
}

// fresh reports whether st may be trusted at now: its owner still polls
// the agent and has seen every event up to less than maxAge ago.
func fresh(st *events.CallState, now time.Time, maxAge time.Duration) bool {
	return st != nil && st.Polling && now.Sub(st.ObservedAt) <= maxAge
}

// pinFromState returns the call a plain command stored at stored means:
// the latest of the agent's calls that began no later than stored+margin
// (a call that began after the command was stored is never its call;
// margin allows for the poller receiving a call's first event after the
// call began). A scopeError when there is none.
func pinFromState(st *events.CallState, stored time.Time, margin time.Duration) (string, *scopeError) {
	for i := len(st.Calls) - 1; i >= 0; i-- {
		if c := &st.Calls[i]; !c.Since.After(stored.Add(margin)) {
			return c.CallID, nil
		}
	}
	if last := st.LastCall(); last != nil {
		return "", callEnded("no call of the agent when the command was stored is still up (its last call %s began at %s, after)",
			last.CallID, last.Since.UTC().Format(time.RFC3339Nano))
	}
	return "", callEnded("the agent has no call")
}

// checkState tells whether call is st's last call with number a party.
func checkState(st *events.CallState, call, number string) *scopeError {
	if m := st.CheckCall(call, number); m != nil {
		return &scopeError{reason: m.Reason, detail: m.Detail}
	}
	return nil
}
