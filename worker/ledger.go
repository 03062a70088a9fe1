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
type ledger struct{ kv jetstream.KeyValue }

const (
	stateStarted = "started"
	stateDone    = "done"
)

type record struct {
	State  string         `json:"state"`
	Owner  string         `json:"owner,omitempty"`
	Result *events.Result `json:"result,omitempty"`
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

// start records that id is about to be sent. It returns the existing record
// when there is one (a previous delivery got this far).
func (l ledger) start(ctx context.Context, id, owner string) (*record, error) {
	b, _ := json.Marshal(record{State: stateStarted, Owner: owner})
	_, err := l.kv.Create(ctx, id, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		r, _, err := l.get(ctx, id)
		return r, err
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: start: %w", err)
	}
	return nil, nil
}

// done stores the final result of id. The caller holds the agent's lease,
// so no other delivery of the command can be writing it.
func (l ledger) done(ctx context.Context, res *events.Result) error {
	b, _ := json.Marshal(record{State: stateDone, Result: res})
	if _, err := l.kv.Put(ctx, res.CommandID, b); err != nil {
		return fmt.Errorf("ledger: done: %w", err)
	}
	return nil
}

// doneAt stores the final result of id only over revision rev (0: only if
// there is no record), for a caller without the agent's lease. A conflict
// is an error: the redelivery will find what the other writer stored.
func (l ledger) doneAt(ctx context.Context, res *events.Result, rev uint64) error {
	b, _ := json.Marshal(record{State: stateDone, Result: res})
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
