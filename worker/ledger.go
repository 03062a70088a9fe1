package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// The idempotency ledger ([events.BucketLedger]) keyed by command_id.
//
// A record is created as "started" just before the first gateway request of
// a command, and replaced by "done" with the result once the outcome is
// decided. So, on any later delivery of the same command_id:
//   - "done": the command is not executed again; its stored result is
//     published again with the same Nats-Msg-Id (de-duplicated);
//   - "started": an earlier delivery may have reached the gateway; a retry
//     that finds the party already gone (200-023/200-024) counts as accepted.
//
// A started record also holds the call the command is scoped to (CallID:
// its call_id, or the call a plain command was pinned to), written before
// the first request; a delivery that takes the record over keeps that
// call, so no later delivery, retry or replay releases a party of a later
// call (DESIGN.md #8, docs/model/ledger.pml).
type ledger struct{ kv jetstream.KeyValue }

const (
	stateStarted = "started"
	stateDone    = "done"
)

type record struct {
	State  string         `json:"state"`
	Owner  string         `json:"owner,omitempty"`
	CallID string         `json:"call_id,omitempty"` // the call the command is scoped to
	Result *events.Result `json:"result,omitempty"`
	// Seq is the commands-stream sequence of the message whose delivery
	// stored the result (0 in records of older versions): only a delivery
	// of that message publishes it again (see Worker.replay).
	Seq uint64 `json:"seq,omitempty"`
}

// get returns the record of id and its revision, or nil and 0 when there
// is none.
func (l ledger) get(ctx context.Context, id string) (*record, uint64, error) {
	e, err := l.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: get: %w", err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("ledger: decode %q: %w", id, err)
	}
	return &r, e.Revision(), nil
}

// start records that id, scoped to call (possibly "" while a plain
// command's call is not resolved yet), is about to be sent by owner, who
// holds the agent. It returns the revision of that record, and the record
// found instead when a previous delivery got this far: a done one (to
// replay), or a started one, which start takes over (rewrites as owner's,
// at a new revision, keeping the call it was scoped to when it has one)
// so that the delivery that wrote it, should it still be alive after
// losing the agent, cannot store its outcome over this one's (see doneAt
// and docs/model/ledger.pml).
func (l ledger) start(ctx context.Context, id, owner, call string) (*record, uint64, error) {
	b, _ := json.Marshal(record{State: stateStarted, Owner: owner, CallID: call})
	for range 3 { // a lost race reads again
		rev, err := l.kv.Create(ctx, id, b)
		if err == nil {
			return nil, rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, 0, fmt.Errorf("ledger: start: %w", err)
		}
		r, rev, err := l.get(ctx, id)
		switch {
		case err != nil:
			return nil, 0, err
		case r == nil: // deleted meanwhile (a replay): create again
			continue
		case r.State != stateStarted:
			return r, rev, nil
		}
		tb := b
		if r.CallID != "" && r.CallID != call { // the first pin wins
			tb, _ = json.Marshal(record{State: stateStarted, Owner: owner, CallID: r.CallID})
		}
		next, err := l.kv.Update(ctx, id, tb, rev)
		if err == nil {
			return r, next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) { // 10071, or 10164 on replicated streams
			return nil, 0, fmt.Errorf("ledger: start: take over: %w", err)
		}
	}
	return nil, 0, fmt.Errorf("ledger: start: record %q keeps changing", id)
}

// pin records call as the call of id's started record, over revision rev
// (the delivery's own record), before the first request is sent. It
// returns the new revision; a conflict means another delivery took the
// record over.
func (l ledger) pin(ctx context.Context, id, owner, call string, rev uint64) (uint64, error) {
	b, _ := json.Marshal(record{State: stateStarted, Owner: owner, CallID: call})
	next, err := l.kv.Update(ctx, id, b, rev)
	if err != nil {
		return 0, fmt.Errorf("ledger: pin: %w", err)
	}
	return next, nil
}

// doneAt stores the final result of id, decided by a delivery of stream
// message seq, only over revision rev (0: only if there is no record): the record this delivery started or read. A
// conflict is an error: the redelivery will find what the other writer
// stored. The lease holder writes this way too: it may have lost the agent
// (renewals failing) to a delivery that took its record over.
func (l ledger) doneAt(ctx context.Context, res *events.Result, rev, seq uint64) error {
	b, _ := json.Marshal(record{State: stateDone, Result: res, Seq: seq})
	var err error
	if rev == 0 {
		_, err = l.kv.Create(ctx, res.CommandID, b)
	} else {
		_, err = l.kv.Update(ctx, res.CommandID, b, rev)
	}
	if err != nil {
		return fmt.Errorf("ledger: done: %w", err)
	}
	return nil
}
