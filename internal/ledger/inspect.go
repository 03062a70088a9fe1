package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Entry is a record with its KV revision and write time, as the operator
// commands show it.
type Entry struct {
	Record
	Revision uint64    `json:"revision"`
	Updated  time.Time `json:"updated_at"`
}

// Entry returns the entry of id, or nil when there is none. O(1).
func (l Ledger) Entry(ctx context.Context, id string) (*Entry, error) { return l.get(ctx, id) }

func (l Ledger) get(ctx context.Context, id string) (*Entry, error) {
	e, err := l.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: get %s: %w", id, err)
	}
	out := &Entry{Revision: e.Revision(), Updated: e.Created()}
	if err := json.Unmarshal(e.Value(), &out.Record); err != nil {
		return nil, fmt.Errorf("ledger: decode %q: %w", id, err)
	}
	return out, nil
}

// Clear deletes the record of id, but only while it is still at revision
// rev: a worker or another replay that wrote it since wins, and the
// caller must look again.
func (l Ledger) Clear(ctx context.Context, id string, rev uint64) error {
	if err := l.kv.Delete(ctx, id, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("ledger record changed since revision %d (a worker or another replay wrote it); look again: %w", rev, err)
	}
	return nil
}

// ReplayMsgID returns the Nats-Msg-Id of a replay of command id, once its
// record is cleared: "replay-<id>-<revision of the delete marker>". Each
// clear leaves a new marker, so each replay of a new outcome gets a new ID
// (and is not dropped as a duplicate of an earlier replay), while every
// attempt to publish one replay finds the same marker and the same ID (and
// is stored once). Without a marker (the record aged out, and with it any
// marker) the ID is "replay-<id>-dlq<dead-letter seq>".
func (l Ledger) ReplayMsgID(ctx context.Context, id string, dlqSeq uint64) (string, error) {
	h, err := l.kv.History(ctx, id)
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
