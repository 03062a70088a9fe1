package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go/jetstream"
)

// Windows of the status lookups. The worker publishes a result right after
// it writes the ledger record (retrying a failed publish within seconds);
// a command lives at most events.MaxTTL from issue to decision; a pending
// confirmation lives at most the pending bucket's TTL (1 h).
const (
	resultAfterLedger = 2 * time.Minute
	issueBeforeLedger = events.MaxTTL + time.Hour
	confirmAfter      = time.Hour + 2*time.Minute
)

// commandStatus is everything status knows about one command.
type commandStatus struct {
	CommandID    string                      `json:"command_id"`
	Ledger       *ledger.Entry               `json:"ledger"`
	ResultEvent  *found[events.Result]       `json:"result_event"`
	Pending      *events.Pending             `json:"pending"`
	Confirmation *found[events.Confirmation] `json:"confirmation"`
	Searched     string                      `json:"searched,omitempty"` // the result window without a ledger record
}

// result is the command's outcome: the ledger's (authoritative, it is
// written first), else the result event's.
func (c *commandStatus) result() *events.Result {
	if c.Ledger != nil && c.Ledger.Result != nil {
		return c.Ledger.Result
	}
	if c.ResultEvent != nil {
		return &c.ResultEvent.Value
	}
	return nil
}

// lookupStatus gathers a command's state. Cost: one ledger read, one
// pending read, and two windowed stream reads: the results stored between
// the command's issue and a little after its ledger record (without a
// record: those of the --since window), and, for an accepted command, the
// confirmations stored from its acceptance until the first that is its
// own (at most ~1 h). No stream is read in full unless --since asks.
func lookupStatus(ctx context.Context, js jetstream.JetStream, id string, since time.Time) (*commandStatus, error) {
	st := &commandStatus{CommandID: id}
	var err error
	if st.Ledger, err = readLedger(ctx, js, id); err != nil {
		return nil, err
	}
	w := scanWindow{stream: events.StreamResults, subject: events.SubjectResults + ".>"}
	switch led := st.Ledger; {
	case led != nil && led.Result != nil:
		from := led.Updated
		if is := led.Result.IssuedAt; !is.IsZero() && is.Before(from) {
			from = is
		}
		w.from, w.to = maxTime(from, led.Updated.Add(-issueBeforeLedger)).Add(-clockSlack), led.Updated.Add(resultAfterLedger)
	case led != nil:
		w.from = led.Updated.Add(-clockSlack)
	default:
		w.from = since
		st.Searched = "results stored since " + since.UTC().Format(time.RFC3339)
	}
	if st.ResultEvent, err = findLast[events.Result](ctx, js, w, id); err != nil {
		return nil, err
	}
	res := st.result()
	if res == nil || res.Status != events.StatusAccepted {
		return st, nil
	}
	if st.Pending, err = readPending(ctx, js, res.AgentID, id); err != nil {
		return nil, err
	}
	cw := scanWindow{stream: events.StreamEvents, subject: events.SubjectConfirmations + ".>",
		from: res.CompletedAt.Add(-clockSlack), to: res.CompletedAt.Add(confirmAfter)}
	st.Confirmation, err = findFirst[events.Confirmation](ctx, js, cw, id)
	return st, err
}

// readPending returns the pending confirmation of a command, or nil.
func readPending(ctx context.Context, js jetstream.JetStream, agent int, id string) (*events.Pending, error) {
	kv, err := js.KeyValue(ctx, events.BucketPending)
	if err != nil {
		return nil, fmt.Errorf("pending: %w", err)
	}
	e, err := kv.Get(ctx, events.PendingKey(agent, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending: %w", err)
	}
	var p events.Pending
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, fmt.Errorf("pending: decode: %w", err)
	}
	return &p, nil
}

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
	nc, js, err := inf.nf.connect("cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, inf.timeout)
	defer cancel()
	st, err := lookupStatus(ctx, js, id, from)
	if err != nil {
		return fmt.Errorf("status %s: %w", id, err)
	}
	if st.Ledger == nil && st.ResultEvent == nil {
		return fmt.Errorf("status %s: not found: no ledger record and no result event among the %s (widen with --since)", id, st.Searched)
	}
	nm := numberMasker{reveal: inf.reveal}
	if inf.asJSON {
		maskStatus(st, nm)
		return writeJSON(stdout, st)
	}
	return printStatus(stdout, st, nm)
}

// maskStatus masks the numbers in st for JSON output.
func maskStatus(st *commandStatus, nm numberMasker) {
	if nm.reveal {
		return
	}
	maskResult := func(r *events.Result) {
		if r != nil {
			r.Reason, r.Number = nm.text(r.Reason, r.Number), nm.number(r.Number)
		}
	}
	if st.Ledger != nil {
		maskResult(st.Ledger.Result)
	}
	if st.ResultEvent != nil {
		maskResult(&st.ResultEvent.Value)
	}
	if st.Pending != nil {
		st.Pending.Number = nm.number(st.Pending.Number)
	}
	if st.Confirmation != nil {
		st.Confirmation.Value.Number = nm.number(st.Confirmation.Value.Number)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// printStatus renders st as a two-column table.
func printStatus(w io.Writer, st *commandStatus, nm numberMasker) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	row("command", "%s", st.CommandID)
	if led := st.Ledger; led != nil {
		row("ledger", "%s (revision %d, written %s)", led.State, led.Revision, ts(led.Updated))
	} else {
		row("ledger", "none (never executed, rejected, cleared by a replay not run yet, or older than the ledger TTL)")
	}
	if r := st.result(); r != nil {
		row("status", "%s", r.Status)
		if r.Reason != "" || (r.RetCode != "" && r.RetCode != "0") {
			row("reason", "%s (retcode %s)", dash(nm.text(r.Reason, r.Number)), dash(r.RetCode))
		}
		row("attempts", "%d (gateway %d ms)", r.Attempts, r.GatewayMillis)
		row("agent", "%d", r.AgentID)
		row("number", "%s", dash(nm.number(r.Number)))
		row("issued", "%s", ts(r.IssuedAt))
		row("deadline", "%s", ts(r.ExpiresAt))
		row("completed", "%s", ts(r.CompletedAt))
	}
	if e := st.ResultEvent; e != nil {
		line := fmt.Sprintf("%s on %s (stream seq %d, %s)", e.Value.Status, e.Subject, e.Seq, ts(e.Time))
		if r := st.result(); r != &e.Value && !r.CompletedAt.Equal(e.Value.CompletedAt) {
			line += "; from an earlier execution: the ledger's result is newer (a replay whose result event is not published yet)"
		}
		row("result event", "%s", line)
	} else {
		row("result event", "none found")
	}
	if r := st.result(); r != nil && r.Status == events.StatusAccepted {
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
