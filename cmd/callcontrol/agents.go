package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// agentView is one line of `callcontrol agents`: what the session
// registry, the poll leases and the live call state say about an agent.
// Parties are masked (also in JSON); call IDs are shown in full, since
// `disconnect --call-id` needs them.
type agentView struct {
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

// listAgents joins the session registry, the poll leases and the call
// states: every agent found in the registry or the call bucket. Cost: one
// read of each of the three buckets' current values.
func listAgents(ctx context.Context, js jetstream.JetStream, now time.Time) ([]agentView, error) {
	views := map[int]*agentView{}
	view := func(agent int) *agentView {
		v, ok := views[agent]
		if !ok {
			v = &agentView{AgentID: agent, Session: "none"}
			views[agent] = v
		}
		return v
	}
	err := readBucket(ctx, js, events.BucketSessions, func(key string, val []byte) {
		agent, err := strconv.Atoi(key)
		if err != nil {
			return
		}
		var s events.Session
		v := view(agent)
		switch {
		case json.Unmarshal(val, &s) != nil || s.GUID == "":
			v.Session, v.SessionReason = string(events.SessionInvalid), "undecodable or no GUID"
		case s.Usable():
			v.Session = string(events.SessionActive)
		default:
			v.Session, v.SessionReason = string(s.State), s.Reason
		}
	})
	if err != nil {
		return nil, err
	}
	err = readBucket(ctx, js, events.BucketCalls, func(key string, val []byte) {
		agent, err := strconv.Atoi(key)
		var s events.CallState
		if err != nil || json.Unmarshal(val, &s) != nil {
			return
		}
		view(agent).setState(&s, now)
	})
	if err != nil {
		return nil, err
	}
	leases := map[int]string{}
	err = readBucket(ctx, js, events.BucketPollers, func(key string, val []byte) {
		if agent, err := strconv.Atoi(strings.TrimPrefix(key, "agent.")); err == nil && strings.HasPrefix(key, "agent.") {
			leases[agent] = string(val)
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]agentView, 0, len(views))
	for _, agent := range slices.Sorted(maps.Keys(views)) {
		v := views[agent]
		v.Poller = leases[agent]
		out = append(out, *v)
	}
	return out, nil
}

// setState records s, its parties masked, and derives the last call and
// the ages from it.
func (v *agentView) setState(s *events.CallState, now time.Time) {
	for i := range s.Calls {
		for j, p := range s.Calls[i].Parties {
			s.Calls[i].Parties[j] = events.MaskNumber(p)
		}
	}
	v.State = s
	if c := s.LastCall(); c != nil {
		v.Call = c
		v.OnCallMillis = max(now.Sub(c.Since), 0).Milliseconds()
	}
	if !s.ObservedAt.IsZero() {
		age := max(now.Sub(s.ObservedAt), 0).Milliseconds()
		v.ObservedAgeMillis = &age
	}
}

// readBucket calls fn with every current key and value of bucket.
func readBucket(ctx context.Context, js jetstream.JetStream, bucket string, fn func(key string, val []byte)) error {
	kv, err := js.KeyValue(ctx, bucket)
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

// agentsHeader is the table's header line (the README shows it).
const agentsHeader = "AGENT\tSESSION\tPOLLER\tCALLS\tCALL\tPHASE\tPARTIES\tON CALL\tOBSERVED"

// printAgents renders the views as a table.
func printAgents(w io.Writer, views []agentView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, agentsHeader)
	for _, v := range views {
		calls, call, phase, parties, onCall, observed := "-", "-", "-", "-", "-", "-"
		if v.State != nil {
			calls = strconv.Itoa(len(v.State.Calls))
			observed = "never (not vouched for)"
			if v.ObservedAgeMillis != nil {
				observed = formatAge(time.Duration(*v.ObservedAgeMillis)*time.Millisecond) + " ago"
			}
			if !v.State.Polling {
				observed += ", not polled since"
			}
		}
		if c := v.Call; c != nil {
			call, phase, parties = c.CallID, string(c.Phase), dash(strings.Join(c.Parties, ","))
			onCall = formatAge(time.Duration(v.OnCallMillis) * time.Millisecond)
		}
		session := v.Session
		if v.SessionReason != "" {
			session += " (" + v.SessionReason + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.AgentID, session, dash(v.Poller), calls, call, phase, parties, onCall, observed)
	}
	return tw.Flush()
}

// formatAge renders d as "850ms", "12.3s" or "4m05s".
func formatAge(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// runAgents lists the agents with their session, poller and current call.
func runAgents(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("agents", stdout)
	var (
		nf      natsFlags
		asJSON  bool
		agent   int
		timeout time.Duration
	)
	nf.register(s, defaultNATSURL)
	output := s.group(groupOutput)
	s.fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table (parties masked too)")
	output()
	s.fs.IntVar(&agent, "agent", 0, "only this agent ID")
	s.fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long the command may take")
	if err := s.parse(args); err != nil {
		return err
	}
	if agent != 0 && (agent < events.AgentIDMin || agent > events.AgentIDMax) {
		return fmt.Errorf("--agent (CALLCONTROL_AGENT): must be between %d and %d, got %d", events.AgentIDMin, events.AgentIDMax, agent)
	}
	nc, js, err := nf.connect("cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	views, err := listAgents(ctx, js, time.Now())
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	if agent != 0 {
		views = slices.DeleteFunc(views, func(v agentView) bool { return v.AgentID != agent })
		if len(views) == 0 {
			return fmt.Errorf("agents: agent %d: no session and no call state", agent)
		}
	}
	if asJSON {
		return writeJSON(stdout, views)
	}
	return printAgents(stdout, views)
}
