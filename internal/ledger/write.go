package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Start records that id, scoped to call (possibly "" while a plain
// command's call is not resolved yet), is about to be sent by owner, who
// holds the agent. It returns the revision of that record, and the record
// found instead when a previous delivery got this far: a done one (to
// replay), or a started one, which Start takes over (rewrites as owner's,
// at a new revision, keeping the call it was scoped to when it has one)
// so that the delivery that wrote it, should it still be alive after
// losing the agent, cannot store its outcome over this one's (see DoneAt
// and docs/model/ledger.pml).
func (l Ledger) Start(ctx context.Context, id, owner, call string) (*Record, uint64, error) {
	b := Started(owner, call)
	for range 3 { // a lost race reads again
		rev, err := l.kv.Create(ctx, id, b)
		if err == nil {
			return nil, rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, 0, fmt.Errorf("ledger: start: %w", err)
		}
		r, rev, err := l.Get(ctx, id)
		switch {
		case err != nil:
			return nil, 0, err
		case r == nil: // deleted meanwhile (a replay): create again
			continue
		case r.State != StateStarted:
			return r, rev, nil
		}
		tb := b
		if r.CallID != "" && r.CallID != call { // the first pin wins
			tb = Started(owner, r.CallID)
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

// Pin records call as the call of id's started record, over revision rev
// (the delivery's own record), before the first request is sent. It
// returns the new revision; a conflict means another delivery took the
// record over.
func (l Ledger) Pin(ctx context.Context, id, owner, call string, rev uint64) (uint64, error) {
	next, err := l.kv.Update(ctx, id, Started(owner, call), rev)
	if err != nil {
		return 0, fmt.Errorf("ledger: pin: %w", err)
	}
	return next, nil
}

// DoneAt stores the final result of id, decided by a delivery of stream
// message seq, only over revision rev (0: only if there is no record): the
// record this delivery started or read. A conflict is an error: the
// redelivery will find what the other writer stored. The lease holder
// writes this way too: it may have lost the agent (renewals failing) to a
// delivery that took its record over.
func (l Ledger) DoneAt(ctx context.Context, res *events.Result, rev, seq uint64) error {
	b := Done(res, seq)
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
