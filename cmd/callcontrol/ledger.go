package main

import (
	"context"

	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go/jetstream"
)

// readLedger returns the ledger entry of id, or nil when there is none
// (never executed, rejected, or older than the ledger's TTL). O(1).
func readLedger(ctx context.Context, js jetstream.JetStream, id string) (*ledger.Entry, error) {
	l, err := ledger.Open(ctx, js)
	if err != nil {
		return nil, err
	}
	return l.Entry(ctx, id)
}

// clearLedger deletes the ledger record of id while it is at revision rev
// ([ledger.Ledger.Clear]).
func clearLedger(ctx context.Context, js jetstream.JetStream, id string, rev uint64) error {
	l, err := ledger.Open(ctx, js)
	if err != nil {
		return err
	}
	return l.Clear(ctx, id, rev)
}

// replayMsgID returns the Nats-Msg-Id of a replay of command id, once its
// ledger record is cleared ([ledger.Ledger.ReplayMsgID]).
func replayMsgID(ctx context.Context, js jetstream.JetStream, id string, dlqSeq uint64) (string, error) {
	l, err := ledger.Open(ctx, js)
	if err != nil {
		return "", err
	}
	return l.ReplayMsgID(ctx, id, dlqSeq)
}
