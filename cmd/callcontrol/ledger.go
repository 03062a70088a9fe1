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

// replayMsgID returns the Nats-Msg-Id of a replay of command id, once its
// ledger record is cleared: "replay-<id>-<revision of the delete marker>".
// Each clear leaves a new marker, so each replay of a new outcome gets a
// new ID (and is not dropped as a duplicate of an earlier replay), while
// every attempt to publish one replay finds the same marker and the same
// ID (and is stored once). Without a marker (the ledger record aged out,
// and with it any marker) the ID is "replay-<id>-dlq<dead-letter seq>".
func replayMsgID(ctx context.Context, js jetstream.JetStream, id string, dlqSeq uint64) (string, error) {
	kv, err := js.KeyValue(ctx, events.BucketLedger)
	if err != nil {
		return "", fmt.Errorf("ledger: %w", err)
	}
	h, err := kv.History(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Sprintf("replay-%s-dlq%d", id, dlqSeq), nil
	}
	if err != nil {
		return "", fmt.Errorf("ledger: history of %s: %w", id, err)
	}
	last := h[len(h)-1]
	if last.Operation() == jetstream.KeyValuePut {
		return "", fmt.Errorf("ledger record of %s reappeared (revision %d): look again", id, last.Revision())
	}
	return fmt.Sprintf("replay-%s-%d", id, last.Revision()), nil
}
