package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// scanBatch is how many messages one fetch of a scan asks for.
const scanBatch = 256

// clockSlack widens the time windows of lookups: the ledger, the result
// and the dead letter are stamped by different stream leaders, whose clocks
// may differ a little on a cluster.
const clockSlack = 5 * time.Second

// scanWindow is a server-side filtered read of one stream: the messages on
// subject stored from from (zero: the first) up to to (zero: the last).
type scanWindow struct {
	stream, subject string
	from, to        time.Time
}

// scan calls fn for each message of w in stream order until fn returns
// false, the window ends or the stream has no more messages. It reads
// through an ephemeral consumer that starts at w.from (JetStream seeks to
// that time itself) and knows from the start how many messages match, so
// it never waits for messages that will not come. Cost: the messages on
// w.subject stored between w.from and the message where it stops.
func scan(ctx context.Context, js jetstream.JetStream, w scanWindow, fn func(jetstream.Msg) bool) error {
	cfg := jetstream.ConsumerConfig{
		FilterSubject: w.subject, AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second, MemoryStorage: true,
	}
	if !w.from.IsZero() {
		from := w.from
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := js.CreateConsumer(ctx, w.stream, cfg)
	if err != nil {
		return fmt.Errorf("stream %s: %w", w.stream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, w.stream, cons.CachedInfo().Name)
	}()
	left := cons.CachedInfo().NumPending
	for left > 0 {
		batch, err := cons.Fetch(int(min(left, scanBatch)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("stream %s: %w", w.stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if !w.to.IsZero() && meta.Timestamp.After(w.to) {
				return nil
			}
			if !fn(m) {
				return nil
			}
			left = meta.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("stream %s: %w", w.stream, err)
		}
		if got == 0 {
			return fmt.Errorf("stream %s: %d messages announced but none delivered", w.stream, left)
		}
	}
	return nil
}

// Found is a message of a stream about one command, decoded: where it is
// stored (sequence, subject, time) and its value.
type Found[T any] struct {
	Seq     uint64    `json:"stream_seq"` // stream sequence
	Subject string    `json:"subject"`    // the subject it was stored on
	Time    time.Time `json:"time"`       // when it was stored
	Value   T         `json:"event"`      // its decoded payload
}

// findLast returns the last message of w whose Callcontrol-Command-Id
// header is id, decoded into T, or nil.
func findLast[T any](ctx context.Context, js jetstream.JetStream, w scanWindow, id string) (*Found[T], error) {
	return find[T](ctx, js, w, id, false)
}

// findFirst is findLast for messages there is at most one of: it stops at
// the first match.
func findFirst[T any](ctx context.Context, js jetstream.JetStream, w scanWindow, id string) (*Found[T], error) {
	return find[T](ctx, js, w, id, true)
}

func find[T any](ctx context.Context, js jetstream.JetStream, w scanWindow, id string, first bool) (*Found[T], error) {
	var last *Found[T]
	var decodeErr error
	err := scan(ctx, js, w, func(m jetstream.Msg) bool {
		if m.Headers().Get(events.HeaderCommandID) != id {
			return true
		}
		meta, _ := m.Metadata()
		f := &Found[T]{Seq: meta.Sequence.Stream, Subject: m.Subject(), Time: meta.Timestamp}
		if decodeErr = json.Unmarshal(m.Data(), &f.Value); decodeErr == nil {
			last = f
		}
		return !(first && last != nil)
	})
	if err == nil && last == nil && decodeErr != nil {
		err = fmt.Errorf("stream %s: undecodable message about %s: %w", w.stream, id, decodeErr)
	}
	return last, err
}
