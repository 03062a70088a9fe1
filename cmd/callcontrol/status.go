package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
)

// runStatus prints what is known about one command. It exits 0 when the
// command was found (a ledger record or a result event), 1 when not or on
// an error.
func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("status", stdout)
	var (
		inf   inspectFlags
		since string
	)
	inf.register(s)
	s.fs.StringVar(&since, "since", "24h", "without a ledger record, search results stored since then: a duration back from now or an RFC 3339 time")
	pos, err := parseArgs(s, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("status: want exactly one argument, a command_id, got %d", len(pos))
	}
	id := pos[0]
	if !events.ValidCommandID(id) {
		return fmt.Errorf("status: command_id must be 1-%d letters, digits, '-' or '_', got %q", events.MaxCommandIDLen, id)
	}
	from, err := parseSince(since, time.Now())
	if err != nil {
		return err
	}
	ctx, c, done, err := inf.nf.client(ctx, "cli", inf.timeout)
	if err != nil {
		return err
	}
	defer done()
	st, err := c.CommandStatus(ctx, id, from)
	if errors.Is(err, admin.ErrNoCommand) {
		return fmt.Errorf("status %s: %w (widen with --since)", id, err)
	}
	if err != nil {
		return fmt.Errorf("status %s: %w", id, err)
	}
	nm := admin.Masker{Reveal: inf.reveal}
	if inf.asJSON {
		st.Mask(nm)
		return writeJSON(stdout, st)
	}
	return printStatus(stdout, st, nm)
}

// printStatus renders st as a two-column table.
func printStatus(w io.Writer, st *admin.CommandStatus, nm admin.Masker) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	row("command", "%s", st.CommandID)
	if led := st.Ledger; led != nil {
		row("ledger", "%s (revision %d, written %s)", led.State, led.Revision, ts(led.Updated))
	} else {
		row("ledger", "none (never executed, rejected, cleared by a replay not run yet, or older than the ledger TTL)")
	}
	if r := st.Result(); r != nil {
		row("status", "%s", r.Status)
		if r.Reason != "" || (r.RetCode != "" && r.RetCode != "0") {
			row("reason", "%s (retcode %s)", dash(nm.Text(r.Reason, r.Number)), dash(r.RetCode))
		}
		row("attempts", "%d (gateway %d ms)", r.Attempts, r.GatewayMillis)
		row("agent", "%d", r.AgentID)
		row("number", "%s", dash(nm.Number(r.Number)))
		row("issued", "%s", ts(r.IssuedAt))
		row("deadline", "%s", ts(r.ExpiresAt))
		row("completed", "%s", ts(r.CompletedAt))
	}
	if e := st.ResultEvent; e != nil {
		line := fmt.Sprintf("%s on %s (stream seq %d, %s)", e.Value.Status, e.Subject, e.Seq, ts(e.Time))
		if r := st.Result(); r != &e.Value && !r.CompletedAt.Equal(e.Value.CompletedAt) {
			line += "; from an earlier execution: the ledger's result is newer (a replay whose result event is not published yet)"
		}
		row("result event", "%s", line)
	} else {
		row("result event", "none found")
	}
	if r := st.Result(); r != nil && r.Status == events.StatusAccepted {
		if p := st.Pending; p != nil {
			row("pending", "awaiting the release event until %s", ts(p.Deadline))
		} else {
			row("pending", "none")
		}
		if c := st.Confirmation; c != nil {
			row("confirmation", "%s event=%s latency=%d ms (stream seq %d, %s)", c.Value.Status, dash(c.Value.EventType),
				c.Value.LatencyMillis, c.Seq, ts(c.Time))
		} else {
			row("confirmation", "none yet")
		}
	}
	return tw.Flush()
}
