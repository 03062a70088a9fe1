package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Agent is what the session registry, the poll leases and the live call
// state say about an agent. Parties are masked (the call state is
// operational data, not for revealing); call IDs are in full, since a
// disconnect scoped to a call needs them.
type Agent struct {
	AgentID int `json:"agent_id"`
	// Session is "active", "invalid" or "none" (only the call state knows
	// the agent); SessionReason says why it is invalid.
	Session       string `json:"session"`
	SessionReason string `json:"session_reason,omitempty"`
	// Poller is the replica holding the agent's poll lease now, "" if none.
	Poller string `json:"poller,omitempty"`
	// Call is the agent's last call (the one disconnect can release from),
	// nil without a call or without a call state.
	Call *events.Call `json:"call,omitempty"`
	// OnCallMillis is how long Call has been up (from its Since).
	OnCallMillis int64 `json:"on_call_ms,omitempty"`
	// ObservedAgeMillis is how old the state's ObservedAt is; nil when the
	// state vouches for nothing (ObservedAt zero) or there is none.
	ObservedAgeMillis *int64 `json:"observed_age_ms,omitempty"`
	// State is the stored call state, every call, parties masked.
	State *events.CallState `json:"call_state,omitempty"`
}

// Agents joins the session registry, the poll leases and the call
// states: every agent found in the registry or the call bucket, by agent
// ID. Cost: one read of each of the three buckets' current values.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	now := c.now()
	agents := map[int]*Agent{}
	agent := func(id int) *Agent {
		a, ok := agents[id]
		if !ok {
			a = &Agent{AgentID: id, Session: "none"}
			agents[id] = a
		}
		return a
	}
	err := c.readBucket(ctx, events.BucketSessions, func(key string, val []byte) {
		if id, err := strconv.Atoi(key); err == nil {
			agent(id).setSession(val)
		}
	})
	if err != nil {
		return nil, err
	}
	err = c.readBucket(ctx, events.BucketCalls, func(key string, val []byte) {
		id, err := strconv.Atoi(key)
		var s events.CallState
		if err != nil || json.Unmarshal(val, &s) != nil {
			return
		}
		agent(id).setState(&s, now)
	})
	if err != nil {
		return nil, err
	}
	leases, err := c.leases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Agent, 0, len(agents))
	for _, id := range slices.Sorted(maps.Keys(agents)) {
		a := agents[id]
		a.Poller = leases[id]
		out = append(out, *a)
	}
	return out, nil
}

// leases returns the holder of each agent's poll lease.
func (c *Client) leases(ctx context.Context) (map[int]string, error) {
	leases := map[int]string{}
	err := c.readBucket(ctx, events.BucketPollers, func(key string, val []byte) {
		if agent, err := strconv.Atoi(strings.TrimPrefix(key, "agent.")); err == nil && strings.HasPrefix(key, "agent.") {
			leases[agent] = string(val)
		}
	})
	return leases, err
}

// setSession records the registry's session val.
func (a *Agent) setSession(val []byte) {
	var s events.Session
	switch {
	case json.Unmarshal(val, &s) != nil || s.GUID == "":
		a.Session, a.SessionReason = string(events.SessionInvalid), "undecodable or no GUID"
	case s.Usable():
		a.Session = string(events.SessionActive)
	default:
		a.Session, a.SessionReason = string(s.State), s.Reason
	}
}

// setState records s, its parties masked, and derives the last call and
// the ages from it.
func (a *Agent) setState(s *events.CallState, now time.Time) {
	for i := range s.Calls {
		for j, p := range s.Calls[i].Parties {
			s.Calls[i].Parties[j] = events.MaskNumber(p)
		}
	}
	a.State = s
	if c := s.LastCall(); c != nil {
		a.Call = c
		a.OnCallMillis = max(now.Sub(c.Since), 0).Milliseconds()
	}
	if !s.ObservedAt.IsZero() {
		age := max(now.Sub(s.ObservedAt), 0).Milliseconds()
		a.ObservedAgeMillis = &age
	}
}

// readBucket calls fn with every current key and value of bucket.
func (c *Client) readBucket(ctx context.Context, bucket string, fn func(key string, val []byte)) error {
	kv, err := c.js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("bucket %s: %w", bucket, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("bucket %s: watch closed", bucket)
			}
			if e == nil { // the current values are all delivered
				return nil
			}
			fn(e.Key(), e.Value())
		}
	}
}
