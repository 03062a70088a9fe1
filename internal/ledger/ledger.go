// Package ledger is the idempotency ledger of disconnect commands: the
// record kept per command_id in [events.BucketLedger], its two states, the
// writes that move a command between them, and [Decide], the rule of what
// a delivery that sends no request may do given the record. The worker,
// the operator commands and the bench all use it, so the record is
// declared here only (docs/model/ledger.pml checks the protocol).
//
// A record is created as "started" just before the first gateway request
// of a command, and replaced by "done" with the result once the outcome
// is decided. So, on any later delivery of the same command_id:
//   - "done": the command is not executed again; its stored result is
//     published again with the same Nats-Msg-Id (de-duplicated);
//   - "started": an earlier delivery may have reached the gateway; a retry
//     that finds the party already gone (200-023/200-024) counts as
//     accepted.
//
// A started record also holds the call the command is scoped to (CallID:
// its call_id, or the call a plain command was pinned to), written before
// the first request; a delivery that takes the record over keeps that
// call, so no later delivery, retry or replay releases a party of a later
// call (DESIGN.md #8).
package ledger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// The states of a record.
const (
	StateStarted = "started" // a request may have been sent
	StateDone    = "done"    // the outcome is decided: Result holds it
)

// Record is the value stored under a command_id.
type Record struct {
	State  string         `json:"state"`
	Owner  string         `json:"owner,omitempty"`   // the worker instance that wrote it
	CallID string         `json:"call_id,omitempty"` // the call the command is scoped to
	Result *events.Result `json:"result,omitempty"`
	// Seq is the commands-stream sequence of the message whose delivery
	// stored the result (0 in records of older versions): only a delivery
	// of that message publishes it again.
	Seq uint64 `json:"seq,omitempty"`
}

// Finished reports whether r holds a decided result.
func (r *Record) Finished() bool { return r != nil && r.State == StateDone && r.Result != nil }

// Accepted reports whether r says the command was executed.
func (r *Record) Accepted() bool { return r.Finished() && r.Result.Status == events.StatusAccepted }

// Started returns the encoded started record of owner, scoped to call.
func Started(owner, call string) []byte {
	b, _ := json.Marshal(Record{State: StateStarted, Owner: owner, CallID: call})
	return b
}

// Done returns the encoded done record of res, stored by a delivery of
// stream message seq.
func Done(res *events.Result, seq uint64) []byte {
	b, _ := json.Marshal(Record{State: StateDone, Result: res, Seq: seq})
	return b
}

// Verdict is what a delivery that sends no request (past its deadline,
// its last delivery, the max-deliveries advisory) may do with a command.
type Verdict int

const (
	// Store: no record, or one without a result: store the outcome over
	// the revision read (0: create), by compare-and-set.
	Store Verdict = iota
	// Republish: the outcome is decided; publish the stored result again
	// and store nothing.
	Republish
	// Contended: a started record: a request may have been sent. The
	// delivery that wrote it may still store its outcome; unless it is
	// the caller's own record, store only once nobody holds the agent,
	// and then as an outcome that may have been executed.
	Contended
)

// Decide returns the verdict for a command whose record is rec (nil:
// none). The worker's expired, last-delivery and max-deliveries paths
// all go through it (docs/model/ledger.pml: the labels expired,
// redeliver's last delivery and exhausted).
func Decide(rec *Record) Verdict {
	switch {
	case rec.Finished():
		return Republish
	case rec != nil && rec.State == StateStarted:
		return Contended
	}
	return Store
}

// Ledger reads and writes records in the ledger bucket.
type Ledger struct{ kv jetstream.KeyValue }

// New returns the ledger in kv ([events.BucketLedger]).
func New(kv jetstream.KeyValue) Ledger { return Ledger{kv: kv} }

// Open returns the ledger of js.
func Open(ctx context.Context, js jetstream.JetStream) (Ledger, error) {
	kv, err := js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		return Ledger{}, fmt.Errorf("ledger: %w", err)
	}
	return New(kv), nil
}

// Get returns the record of id and its revision, or nil and 0 when there
// is none (never executed, rejected, or older than the bucket's TTL).
func (l Ledger) Get(ctx context.Context, id string) (*Record, uint64, error) {
	e, err := l.get(ctx, id)
	if e == nil || err != nil {
		return nil, 0, err
	}
	return &e.Record, e.Revision, nil
}
