package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Exit codes of `disconnect --wait`.
const (
	exitNotAccepted = 1 // rejected, failed or expired
	exitUnconfirmed = 3 // accepted, but no release event arrived in time
)

// runDisconnect publishes one command and, with --wait, prints its result
// and its confirmation. It exits 0 only for an accepted (and, unless
// --confirm=false, confirmed) command.
func runDisconnect(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("disconnect", stdout)
	var (
		nf            natsFlags
		cmd           events.DisconnectCommand
		ttl, timeout  time.Duration
		wait, confirm bool
		traceparent   string
	)
	nf.register(s, defaultNATSURL)
	s.fs.IntVar(&cmd.AgentID, "agent", 0, "agent ID (101-59999)")
	s.fs.StringVar(&cmd.Number, "number", "", "number of the party to release (1-24 digits)")
	s.fs.DurationVar(&ttl, "ttl", 0, "command lifetime (default: the worker's default TTL)")
	s.fs.StringVar(&cmd.CommandID, "command-id", "", "command ID (default: a new UUID)")
	s.fs.StringVar(&cmd.CorrelationID, "correlation-id", "", "your reference, copied to the result")
	s.fs.StringVar(&cmd.RequestedBy, "requested-by", "cli", "who asks, for audit")
	s.fs.StringVar(&cmd.CallID, "call-id", "", "scope the command to this call (the gateway's call ID, as the agent events carry it): it is never sent once that call is not the agent's last call (default: the call that is current when the command is stored)")
	s.fs.BoolVar(&wait, "wait", false, "wait for the result (and confirmation) and print them")
	s.fs.BoolVar(&confirm, "confirm", true, "with --wait, also wait for the confirmation from the poller")
	s.fs.DurationVar(&timeout, "timeout", time.Minute, "how long --wait waits")
	s.fs.StringVar(&traceparent, "traceparent", "", "W3C traceparent to send with the command (default: a new trace); the result and confirmation carry its trace ID")
	for f, n := range map[string]string{"agent_id": "agent", "number": "number", "ttl_ms": "ttl",
		"command_id": "command-id", "correlation_id": "correlation-id", "requested_by": "requested-by",
		"call_id": "call-id"} {
		s.field(f, n)
	}
	if err := s.parse(args); err != nil {
		return err
	}
	if traceparent == "" {
		traceparent = newTraceparent()
	} else if !tracing.Valid(traceparent) {
		return fmt.Errorf("--traceparent (CALLCONTROL_TRACEPARENT): not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>), got %q", traceparent)
	}
	if cmd.CommandID == "" {
		cmd.CommandID = uuid.NewString()
	}
	cmd.IssuedAt, cmd.TTL = time.Now().UTC(), ttl.Round(time.Millisecond)
	if err := cmd.Validate(); err != nil {
		return s.explain(fmt.Errorf("command: %w", err))
	}
	nc, js, err := nf.connect("cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !wait {
		if err := publishCommand(ctx, js, cmd, traceparent); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "published command %s\n", cmd.CommandID)
		return nil
	}
	return publishAndWait(ctx, js, cmd, traceparent, confirm, stdout)
}

// publishAndWait subscribes to results and confirmations first, so that
// neither can be missed, then publishes and prints what arrives.
func publishAndWait(ctx context.Context, js jetstream.JetStream, cmd events.DisconnectCommand, traceparent string, confirm bool, stdout io.Writer) error {
	results, err := tail(ctx, js, events.StreamResults, events.SubjectResults+".>", false)
	if err != nil {
		return err
	}
	defer results.Stop()
	var confirmations jetstream.MessagesContext
	if confirm {
		if confirmations, err = tail(ctx, js, events.StreamEvents, events.SubjectConfirmations+".>", false); err != nil {
			return err
		}
		defer confirmations.Stop()
	}
	if err := publishCommand(ctx, js, cmd, traceparent); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published command %s: agent %d, number %s, trace %s (traceparent %s)\n",
		cmd.CommandID, cmd.AgentID, events.MaskNumber(cmd.Number), traceID(traceparent), traceparent)
	res, stored, err := awaitResult(ctx, js, results, cmd.CommandID)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, formatResult(res))
	if res.Status != events.StatusAccepted {
		return exitError(exitNotAccepted)
	}
	if !confirm {
		return nil
	}
	var c events.Confirmation
	if stored {
		// Maybe the result of an earlier run of this command_id: so would
		// be its confirmation, if it has one yet.
		w := scanWindow{stream: events.StreamEvents, subject: events.SubjectConfirmations + ".>", from: res.CompletedAt.Add(-clockSlack)}
		if f, err := findFirst[events.Confirmation](ctx, js, w, cmd.CommandID); err == nil && f != nil {
			c = f.Value
		}
	}
	if c.CommandID == "" {
		if err := await(ctx, confirmations, cmd.CommandID, &c); err != nil {
			return fmt.Errorf("%w (is a poller running?)", err)
		}
	}
	fmt.Fprintln(stdout, formatConfirmation(c))
	if c.Status != events.ConfirmationConfirmed {
		return exitError(exitUnconfirmed)
	}
	return nil
}

// awaitResult returns the result of command id: the result message that
// arrives on results, or the one the ledger already holds. A command_id
// used before (published again after the de-duplication window) gets no
// second result message while the ledger remembers it (DESIGN.md #9), so
// the ledger is read too, every ledgerPoll; stored says the result came
// from there.
func awaitResult(ctx context.Context, js jetstream.JetStream, results jetstream.MessagesContext, id string) (res events.Result, stored bool, err error) {
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
		if err := await(ctx, results, id, &r); err != nil {
			errc <- err
			return
		}
		found <- result{r, false}
	}()
	go func() {
		for {
			if e, err := readLedger(ctx, js, id); err == nil && e != nil && e.Finished() {
				found <- result{*e.Result, true}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(ledgerPoll):
			}
		}
	}()
	select {
	case r := <-found:
		return r.Result, r.stored, nil
	case err := <-errc:
		return events.Result{}, false, err
	}
}

// ledgerPoll is how often awaitResult reads the ledger.
const ledgerPoll = 500 * time.Millisecond

// publishCommand publishes cmd with its command_id as Nats-Msg-Id and, when
// traceparent is not empty, that trace context.
func publishCommand(ctx context.Context, js jetstream.JetStream, cmd events.DisconnectCommand, traceparent string) error {
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
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish command: %w", err)
	}
	return nil
}

// tail opens an ordered consumer on stream for subject, from now or (all)
// from the first stored message.
func tail(ctx context.Context, js jetstream.JetStream, stream, subject string, all bool) (jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if all {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	return cons.Messages()
}

// await decodes into v the first message of msgs about command id.
func await(ctx context.Context, msgs jetstream.MessagesContext, id string, v any) error {
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

// formatResult renders a result as one human-readable line.
func formatResult(r events.Result) string {
	line := fmt.Sprintf("%-11s command=%s agent=%d number=%s attempts=%d gateway=%dms",
		r.Status, r.CommandID, r.AgentID, events.MaskNumber(r.Number), r.Attempts, r.GatewayMillis)
	if !r.IssuedAt.IsZero() && !r.CompletedAt.IsZero() {
		line += fmt.Sprintf(" latency=%dms", r.CompletedAt.Sub(r.IssuedAt).Milliseconds())
	}
	if r.RetCode != "" && r.RetCode != "0" {
		line += " retcode=" + r.RetCode
	}
	if r.Reason != "" {
		line += fmt.Sprintf(" reason=%q", r.Reason)
	}
	return line
}

// formatConfirmation renders a confirmation as one human-readable line.
func formatConfirmation(c events.Confirmation) string {
	line := fmt.Sprintf("%-11s command=%s agent=%d number=%s", c.Status, c.CommandID, c.AgentID, events.MaskNumber(c.Number))
	if c.Status == events.ConfirmationConfirmed {
		line += fmt.Sprintf(" event=%s call=%s latency=%dms", c.EventType, c.CallID, c.LatencyMillis)
	}
	if !c.AcceptedAt.IsZero() && !c.ConfirmedAt.IsZero() {
		line += fmt.Sprintf(" after_accept=%dms", c.ConfirmedAt.Sub(c.AcceptedAt).Milliseconds())
	}
	return line
}
