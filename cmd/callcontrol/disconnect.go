package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/google/uuid"
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
	s.fieldFlags(map[string]string{"agent_id": "agent", "number": "number", "ttl_ms": "ttl",
		"command_id": "command-id", "correlation_id": "correlation-id", "requested_by": "requested-by",
		"call_id": "call-id"})
	if err := s.parse(args); err != nil {
		return err
	}
	if traceparent == "" {
		traceparent = tracing.NewTraceparent()
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
	ctx, c, done, err := nf.client(ctx, "cli", timeout)
	if err != nil {
		return err
	}
	defer done()
	if !wait {
		if err := c.Publish(ctx, cmd, traceparent); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "published command %s\n", cmd.CommandID)
		return nil
	}
	return publishAndWait(ctx, c, cmd, traceparent, confirm, stdout)
}

// publishAndWait follows results and confirmations first, so that neither
// can be missed, then publishes and prints what arrives.
func publishAndWait(ctx context.Context, c *admin.Client, cmd events.DisconnectCommand, traceparent string, confirm bool, stdout io.Writer) error {
	sub, err := c.Submit(ctx, cmd, admin.SubmitOptions{Traceparent: traceparent, Confirm: confirm})
	if err != nil {
		return err
	}
	defer sub.Close()
	fmt.Fprintf(stdout, "published command %s: agent %d, number %s, trace %s (traceparent %s)\n",
		cmd.CommandID, cmd.AgentID, events.MaskNumber(cmd.Number), tracing.TraceID(traceparent), traceparent)
	res, _, err := sub.Result(ctx)
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
	conf, err := sub.Confirmation(ctx)
	if err != nil {
		return fmt.Errorf("%w (is a poller running?)", err)
	}
	fmt.Fprintln(stdout, formatConfirmation(conf))
	if conf.Status != events.ConfirmationConfirmed {
		return exitError(exitUnconfirmed)
	}
	return nil
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
