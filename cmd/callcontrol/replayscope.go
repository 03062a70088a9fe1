package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// scopeReplay scopes a replayed command to the call it meant (DESIGN.md
// #8): its call_id, else the call its first execution was pinned to (the
// result's call_id), else the agent's call that began before the command
// was first stored if the live call state still has it, else (not with
// --force, which re-dates it) the worker pins it by its issued_at. It
// refuses, --force or not, when the call state shows that call is over or
// the number no longer in it; when the state cannot say, the worker
// checks before sending.
func (r *replayer) scopeReplay(ctx context.Context, cmd *events.DisconnectCommand, prev *events.Result, out *replayed) error {
	st, err := readCallState(ctx, r.js, cmd.AgentID)
	if err != nil {
		return err
	}
	call := cmd.CallID
	if call == "" && prev != nil {
		call = prev.CallID
	}
	if call == "" && prev != nil && st != nil {
		margin := worker.DefaultConfig().CallStartMargin
		for i := len(st.Calls) - 1; i >= 0 && call == ""; i-- {
			if c := st.Calls[i]; !prev.IssuedAt.IsZero() && !c.Since.After(prev.IssuedAt.Add(margin)) {
				call = c.CallID
			}
		}
	}
	switch {
	case call == "" && r.force:
		return errors.New("its call is not known (no call_id, none pinned by its first execution) and --force re-dates it: a worker would take the call up now, possibly a later one; publish a new command with call_id")
	case call == "":
		// issued_at is the first execution's: a worker pins a replay to
		// the agent's call that began before it, never a later one.
		out.notes = append(out.notes, "no call known: the worker pins it to the agent's call that was up at issued_at, if that call is still up")
		return nil
	}
	if st != nil {
		if err := callStillUp(st, call, cmd.Number); err != nil {
			return err
		}
	}
	if cmd.CallID == "" {
		cmd.CallID = call
		out.notes = append(out.notes, "scoped to call "+call+": the worker sends it only while that call is up")
	}
	return nil
}

// callStillUp says why call is not st's last call with number in it. A
// state its poller no longer keeps (polling false) only says so when it
// remembers the call ended; otherwise the worker asks the gateway.
func callStillUp(st *events.CallState, call, number string) error {
	m := st.CheckCall(call, number)
	if m == nil {
		return nil
	}
	if _, ended := st.EndedCallAt(call); !st.Polling && !ended {
		return nil
	}
	return m
}

// readCallState returns agent's live call state, or nil when there is none.
func readCallState(ctx context.Context, js jetstream.JetStream, agent int) (*events.CallState, error) {
	kv, err := js.KeyValue(ctx, events.BucketCalls)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketCalls, err)
	}
	e, err := kv.Get(ctx, events.CallStateKey(agent))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("call state of agent %d: %w", agent, err)
	}
	var st events.CallState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("call state of agent %d: %w", agent, err)
	}
	return &st, nil
}
