package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish publishes cmd with its command_id as Nats-Msg-Id and, when
// traceparent is not empty, that trace context. It does not validate cmd
// (a worker rejects an invalid command with a result): call
// [events.DisconnectCommand.Validate] first.
func (c *Client) Publish(ctx context.Context, cmd events.DisconnectCommand, traceparent string) error {
	data, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	m.Header.Set(events.HeaderMsgID, cmd.CommandID)
	if traceparent != "" {
		m.Header.Set(events.HeaderTraceparent, traceparent)
	}
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish command: %w", err)
	}
	return nil
}

// Tail opens an ordered consumer on stream for subject, from now or
// (fromStart) from the first stored message. Stop the result when done.
func (c *Client) Tail(ctx context.Context, stream, subject string, fromStart bool) (jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if fromStart {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := c.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	return cons.Messages()
}

// Await decodes into v the first message of msgs about command id (its
// Callcontrol-Command-Id header). It stops msgs when ctx ends and then
// fails with an error wrapping ctx's.
func Await(ctx context.Context, msgs jetstream.MessagesContext, id string, v any) error {
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("nothing arrived for command %s: %w", id, ctx.Err())
			}
			return err
		}
		if m.Headers().Get(events.HeaderCommandID) == id {
			return json.Unmarshal(m.Data(), v)
		}
	}
}

// SubmitOptions are the settings of [Client.Submit].
type SubmitOptions struct {
	// Traceparent is the W3C trace context to send with the command ("":
	// none).
	Traceparent string
	// Confirm also follows the confirmations, for
	// [Submission.Confirmation].
	Confirm bool
}

// Submission is a published command whose result (and confirmation) is
// being followed. Close it when done.
type Submission struct {
	c             *Client
	id            string
	results       jetstream.MessagesContext
	confirmations jetstream.MessagesContext
	res           events.Result
	stored        bool
}

// Submit follows the results (and, with opts.Confirm, the confirmations)
// first, so that neither can be missed, then publishes cmd.
func (c *Client) Submit(ctx context.Context, cmd events.DisconnectCommand, opts SubmitOptions) (*Submission, error) {
	s := &Submission{c: c, id: cmd.CommandID}
	var err error
	if s.results, err = c.Tail(ctx, events.StreamResults, events.SubjectResults+".>", false); err != nil {
		return nil, err
	}
	if opts.Confirm {
		if s.confirmations, err = c.Tail(ctx, events.StreamEvents, events.SubjectConfirmations+".>", false); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := c.Publish(ctx, cmd, opts.Traceparent); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops following.
func (s *Submission) Close() {
	if s.results != nil {
		s.results.Stop()
	}
	if s.confirmations != nil {
		s.confirmations.Stop()
	}
}

// ledgerPoll is how often Result reads the ledger.
const ledgerPoll = 500 * time.Millisecond

// Result returns the command's result: the result message that arrives,
// or the one the ledger already holds. A command_id used before
// (published again after the de-duplication window) gets no second
// result message while the ledger remembers it (DESIGN.md #9), so the
// ledger is read too, every 500 ms; stored says the result came from
// there.
func (s *Submission) Result(ctx context.Context) (res events.Result, stored bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		events.Result
		stored bool
	}
	found := make(chan result, 2)
	errc := make(chan error, 1)
	go func() {
		var r events.Result
		if err := Await(ctx, s.results, s.id, &r); err != nil {
			errc <- err
			return
		}
		found <- result{r, false}
	}()
	go func() {
		if r := s.c.pollLedger(ctx, s.id); r != nil {
			found <- result{*r, true}
		}
	}()
	select {
	case r := <-found:
		s.res, s.stored = r.Result, r.stored
		return r.Result, r.stored, nil
	case err := <-errc:
		return events.Result{}, false, err
	}
}

// pollLedger reads the ledger record of id every ledgerPoll until it holds
// a result (returned) or ctx ends (nil).
func (c *Client) pollLedger(ctx context.Context, id string) *events.Result {
	for {
		if l, err := ledger.Open(ctx, c.js); err == nil {
			if e, err := l.Entry(ctx, id); err == nil && e != nil && e.Finished() {
				return e.Result
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(ledgerPoll):
		}
	}
}

// Confirmation returns the command's confirmation, after [Submission.Result]
// (and only with SubmitOptions.Confirm). A result from the ledger may be
// an earlier run's: so would be its confirmation, which is looked up
// first.
func (s *Submission) Confirmation(ctx context.Context) (events.Confirmation, error) {
	var c events.Confirmation
	if s.stored {
		w := scanWindow{stream: events.StreamEvents, subject: events.SubjectConfirmations + ".>", from: s.res.CompletedAt.Add(-clockSlack)}
		if f, err := findFirst[events.Confirmation](ctx, s.c.js, w, s.id); err == nil && f != nil && f.Value.CommandID != "" {
			return f.Value, nil
		}
	}
	if s.confirmations == nil {
		return c, fmt.Errorf("admin: submission of %s does not follow confirmations", s.id)
	}
	err := Await(ctx, s.confirmations, s.id, &c)
	return c, err
}
