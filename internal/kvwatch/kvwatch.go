// Package kvwatch keeps an in-memory view in step with a JetStream
// key-value bucket: the one watch loop the worker's session cache and the
// poller's session registry, membership and pending view share.
package kvwatch

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retry is the pause before a failed or ended watch is set up again.
const Retry = time.Second

// View is what Follow feeds.
type View struct {
	// Apply records one entry: the current value of every matching key
	// first, then each change. A watch set up again delivers every current
	// value again, so Apply must keep the newest revision per key (or be
	// idempotent). Deletes and purges come as entries too.
	Apply func(jetstream.KeyValueEntry)
	// Ready, if set, is called each time a watch has delivered the initial
	// values (so at least once, and again after each re-watch).
	Ready func()
	// Failed, if set, is called when a watch cannot be set up (not when
	// ctx ended).
	Failed func(error)
}

// Follow watches the keys of kv matching filter (a key or a wildcard;
// "" for all) until ctx ends, setting the watch up again [Retry] after it
// fails or ends.
func Follow(ctx context.Context, kv jetstream.KeyValue, filter string, v View) {
	for ctx.Err() == nil {
		once(ctx, kv, filter, v)
		t := time.NewTimer(Retry)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func once(ctx context.Context, kv jetstream.KeyValue, filter string, v View) {
	var (
		w   jetstream.KeyWatcher
		err error
	)
	if filter == "" {
		w, err = kv.WatchAll(ctx)
	} else {
		w, err = kv.Watch(ctx, filter)
	}
	if err != nil {
		if ctx.Err() == nil && v.Failed != nil {
			v.Failed(err)
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return
			case e == nil: // end of the initial values
				if v.Ready != nil {
					v.Ready()
				}
			default:
				v.Apply(e)
			}
		}
	}
}
