package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// ledgerRecord is the value the worker stores in [events.BucketLedger]
// under a command_id (worker/ledger.go): "started" just before the first
// gateway request, "done" with the result once the outcome is decided.
type ledgerRecord struct {
	State  string         `json:"state"`
	Owner  string         `json:"owner,omitempty"`
	Result *events.Result `json:"result,omitempty"`
}

// Ledger states, as the worker writes them.
const (
	ledgerStarted = "started"
	ledgerDone    = "done"
)

// ledgerEntry is a ledger record with its KV revision and write time.
type ledgerEntry struct {
	ledgerRecord
	Revision uint64    `json:"revision"`
	Updated  time.Time `json:"updated_at"`
}

// accepted tells whether the record says the command was executed.
func (e *ledgerEntry) accepted() bool {
	return e != nil && e.State == ledgerDone && e.Result != nil && e.Result.Status == events.StatusAccepted
}

// readLedger returns the ledger entry of id, or nil when there is none
// (never executed, rejected, or older than the ledger's TTL). O(1).
func readLedger(ctx context.Context, js jetstream.JetStream, id string) (*ledgerEntry, error) {
	kv, err := js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: get %s: %w", id, err)
	}
	out := &ledgerEntry{Revision: e.Revision(), Updated: e.Created()}
	if err := json.Unmarshal(e.Value(), &out.ledgerRecord); err != nil {
		return nil, fmt.Errorf("ledger: decode %s: %w", id, err)
	}
	return out, nil
}

// clearLedger deletes the ledger record of id, but only while it is still
// at revision rev: a worker or another replay that wrote it since wins,
// and the caller must look again.
func clearLedger(ctx context.Context, js jetstream.JetStream, id string, rev uint64) error {
	kv, err := js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if err := kv.Delete(ctx, id, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("ledger record changed since revision %d (a worker or another replay wrote it); look again: %w", rev, err)
	}
	return nil
}
