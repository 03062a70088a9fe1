package admin

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
// Force, which re-dates it) the worker pins it by its issued_at. It
// refuses, Force or not, when the call state shows that call is over or
// the number no longer in it; when the state cannot say, the worker
// checks before sending.
func (r *replayer) scopeReplay(ctx context.Context, cmd *events.DisconnectCommand, prev *events.Result, out *Replayed) error {
	st, err := r.c.CallState(ctx, cmd.AgentID)
	if err != nil {
		return err
	}
	call := scopedCall(cmd, prev, st)
	switch {
	case call == "" && r.Force:
		return refused(RefusedCallUnknown, "its call is not known (no call_id, none pinned by its first execution) and --force re-dates it: a worker would take the call up now, possibly a later one; publish a new command with call_id")
	case call == "":
		// issued_at is the first execution's: a worker pins a replay to
		// the agent's call that began before it, never a later one.
		out.Notes = append(out.Notes, "no call known: the worker pins it to the agent's call that was up at issued_at, if that call is still up")
		return nil
	}
	if st != nil {
		if m := callStillUp(st, call, cmd.Number); m != nil {
			return &ReplayRefusedError{Reason: m.Reason, Detail: m.Error(), Err: m}
		}
	}
	if cmd.CallID == "" {
		cmd.CallID = call
		out.Notes = append(out.Notes, "scoped to call "+call+": the worker sends it only while that call is up")
	}
	return nil
}

// scopedCall returns the call a replay of cmd means, "" when not known.
func scopedCall(cmd *events.DisconnectCommand, prev *events.Result, st *events.CallState) string {
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
	return call
}

// callStillUp says why call is not st's last call with number in it. A
// state its poller no longer keeps (polling false) only says so when it
// remembers the call ended; otherwise the worker asks the gateway.
func callStillUp(st *events.CallState, call, number string) *events.CallMismatch {
	m := st.CheckCall(call, number)
	if m == nil {
		return nil
	}
	if _, ended := st.EndedCallAt(call); !st.Polling && !ended {
		return nil
	}
	return m
}

// CallState returns agent's live call state as the pollers keep it, or
// nil when there is none (no call bucket, or no state for the agent).
func (c *Client) CallState(ctx context.Context, agent int) (*events.CallState, error) {
	kv, err := c.js.KeyValue(ctx, events.BucketCalls)
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
