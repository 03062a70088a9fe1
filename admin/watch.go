package admin

import (
	"context"
	"errors"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// WatchOptions are the settings of [Client.Watch].
type WatchOptions struct {
	FromStart bool // from the first stored message instead of now
	Events    bool // also every agent event, not only results and confirmations
}

// Message is one message [Client.Watch] saw.
type Message struct {
	Subject string
	Stored  time.Time // when JetStream stored it; zero if not known
	Data    []byte
}

// Watch calls fn, from one goroutine, for each result and confirmation
// (and, with opts.Events, agent event) as it arrives, until ctx ends; it
// then returns nil. It fails only when a stream cannot be followed.
func (c *Client) Watch(ctx context.Context, opts WatchOptions, fn func(Message)) error {
	feeds := []struct{ stream, subject string }{
		{events.StreamResults, events.SubjectResults + ".>"},
		{events.StreamEvents, events.SubjectConfirmations + ".>"},
	}
	if opts.Events {
		feeds = append(feeds, struct{ stream, subject string }{events.StreamEvents, events.SubjectAgentEvents + ".>"})
	}
	out := make(chan Message)
	for _, f := range feeds {
		msgs, err := c.Tail(ctx, f.stream, f.subject, opts.FromStart)
		if err != nil {
			return err
		}
		defer msgs.Stop()
		go feed(ctx, msgs, out)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-out:
			fn(m)
		}
	}
}

// feed sends the messages of msgs to out until msgs stops or ctx ends.
func feed(ctx context.Context, msgs jetstream.MessagesContext, out chan<- Message) {
	for {
		m, err := msgs.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return
		}
		if err != nil {
			continue
		}
		msg := Message{Subject: m.Subject(), Data: m.Data()}
		if meta, err := m.Metadata(); err == nil {
			msg.Stored = meta.Timestamp
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			return
		}
	}
}
