package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runDisconnect publishes one command and, with --wait, prints its result
// and exits non-zero unless it was accepted.
func runDisconnect(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("disconnect", stderr)
	var (
		nf      natsFlags
		cmd     events.DisconnectCommand
		ttl     time.Duration
		wait    bool
		timeout time.Duration
	)
	nf.register(s, "nats://127.0.0.1:4222")
	s.fs.IntVar(&cmd.AgentID, "agent", 0, "agent ID (101-59999)")
	s.fs.StringVar(&cmd.Number, "number", "", "number of the party to release (1-24 digits)")
	s.fs.DurationVar(&ttl, "ttl", 0, "command lifetime (default: the worker's default TTL)")
	s.fs.StringVar(&cmd.CommandID, "command-id", "", "command ID (default: a new UUID)")
	s.fs.StringVar(&cmd.CorrelationID, "correlation-id", "", "your reference, copied to the result")
	s.fs.StringVar(&cmd.RequestedBy, "requested-by", "cli", "who asks, for audit")
	s.fs.BoolVar(&wait, "wait", false, "wait for the result, print it and exit non-zero unless accepted")
	s.fs.DurationVar(&timeout, "timeout", time.Minute, "how long --wait waits")
	for f, n := range map[string]string{"agent_id": "agent", "number": "number", "ttl_ms": "ttl",
		"command_id": "command-id", "correlation_id": "correlation-id", "requested_by": "requested-by"} {
		s.field(f, n)
	}
	if err := s.parse(args); err != nil {
		return err
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

	var results jetstream.MessagesContext
	if wait { // subscribe before publishing, so the result cannot be missed
		if results, err = tailResults(ctx, js, false); err != nil {
			return err
		}
		defer results.Stop()
	}
	if err := publishCommand(ctx, js, cmd); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published command %s: agent %d, number %s\n", cmd.CommandID, cmd.AgentID, events.MaskNumber(cmd.Number))
	if !wait {
		return nil
	}
	res, err := awaitResult(ctx, results, cmd.CommandID)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, formatResult(res))
	if res.Status != events.StatusAccepted {
		return exitError(1)
	}
	return nil
}

func publishCommand(ctx context.Context, js jetstream.JetStream, cmd events.DisconnectCommand) error {
	data, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	m.Header.Set(events.HeaderMsgID, cmd.CommandID)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish command: %w", err)
	}
	return nil
}

// tailResults opens an ordered consumer on the result stream, from now or
// from the start.
func tailResults(ctx context.Context, js jetstream.JetStream, all bool) (jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectResults + ".>"}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if all {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, events.StreamResults, cfg)
	if err != nil {
		return nil, fmt.Errorf("results stream: %w", err)
	}
	return cons.Messages()
}

func awaitResult(ctx context.Context, msgs jetstream.MessagesContext, id string) (events.Result, error) {
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return events.Result{}, fmt.Errorf("no result for command %s: %w", id, ctx.Err())
			}
			return events.Result{}, err
		}
		if m.Headers().Get(events.HeaderCommandID) != id {
			continue
		}
		var r events.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			return r, fmt.Errorf("decode result: %w", err)
		}
		return r, nil
	}
}

// formatResult renders a result as one human-readable line.
func formatResult(r events.Result) string {
	line := fmt.Sprintf("%-8s command=%s agent=%d number=%s attempts=%d gateway=%dms",
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

// runWatch prints every result as it arrives until interrupted.
func runWatch(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("watch", stderr)
	var (
		nf  natsFlags
		all bool
	)
	nf.register(s, "nats://127.0.0.1:4222")
	s.fs.BoolVar(&all, "all", false, "start from the first stored result instead of now")
	if err := s.parse(args); err != nil {
		return err
	}
	nc, js, err := nf.connect("watch")
	if err != nil {
		return err
	}
	defer nc.Close()
	msgs, err := tailResults(ctx, js, all)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	for {
		m, err := msgs.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		var r events.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			fmt.Fprintf(os.Stderr, "undecodable result on %s: %v\n", m.Subject(), err)
			continue
		}
		fmt.Fprintf(stdout, "%s %s\n", r.CompletedAt.Local().Format(time.TimeOnly), formatResult(r))
	}
}
