package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// CommandStatus is everything known about one command.
type CommandStatus struct {
	CommandID    string                      `json:"command_id"`
	Ledger       *ledger.Entry               `json:"ledger"`             // nil: no record
	ResultEvent  *Found[events.Result]       `json:"result_event"`       // the last result event found
	Pending      *events.Pending             `json:"pending"`            // an accepted command's pending confirmation
	Confirmation *Found[events.Confirmation] `json:"confirmation"`       // an accepted command's confirmation
	Searched     string                      `json:"searched,omitempty"` // the result window without a ledger record
}

// Result is the command's outcome: the ledger's (authoritative, it is
// written first), else the result event's; nil when neither is known.
func (c *CommandStatus) Result() *events.Result {
	if c.Ledger != nil && c.Ledger.Result != nil {
		return c.Ledger.Result
	}
	if c.ResultEvent != nil {
		return &c.ResultEvent.Value
	}
	return nil
}

// ErrNoCommand means that a command has no ledger record and no result
// event in the searched window. [Client.CommandStatus] returns it wrapped
// in a [*NoCommandError] saying where it searched.
var ErrNoCommand = errors.New("not found")

// NoCommandError is the [ErrNoCommand] of one lookup.
type NoCommandError struct {
	CommandID string
	Searched  string // the window searched, e.g. "results stored since <time>"
}

func (e *NoCommandError) Error() string {
	return "not found: no ledger record and no result event among the " + e.Searched
}

// Is makes errors.Is(err, ErrNoCommand) true.
func (e *NoCommandError) Is(target error) bool { return target == ErrNoCommand }

// CommandStatus gathers command id's state; without a ledger record it
// searches the results stored since since (zero: all). It fails with a
// [*NoCommandError] (errors.Is [ErrNoCommand]) when the command has no
// ledger record and no result event. Cost: one ledger read, one pending
// read, and two windowed stream reads: the results stored between the
// command's issue and a little after its ledger record (without a record:
// those since since), and, for an accepted command, the confirmations
// stored from its acceptance until the first that is its own (at most
// ~1 h). No stream is read in full unless since is zero.
func (c *Client) CommandStatus(ctx context.Context, id string, since time.Time) (*CommandStatus, error) {
	st, err := c.lookupStatus(ctx, id, since)
	if err != nil {
		return nil, err
	}
	if st.Ledger == nil && st.ResultEvent == nil {
		return st, &NoCommandError{CommandID: id, Searched: st.Searched}
	}
	return st, nil
}

func (c *Client) lookupStatus(ctx context.Context, id string, since time.Time) (*CommandStatus, error) {
	l, err := ledger.Open(ctx, c.js)
	if err != nil {
		return nil, err
	}
	st := &CommandStatus{CommandID: id}
	if st.Ledger, err = l.Entry(ctx, id); err != nil {
		return nil, err
	}
	w := st.resultWindow(since)
	if st.ResultEvent, err = findLast[events.Result](ctx, c.js, w, id); err != nil {
		return nil, err
	}
	res := st.Result()
	if res == nil || res.Status != events.StatusAccepted {
		return st, nil
	}
	if st.Pending, err = c.pending(ctx, res.AgentID, id); err != nil {
		return nil, err
	}
	cw := scanWindow{stream: events.StreamEvents, subject: events.SubjectConfirmations + ".>",
		from: res.CompletedAt.Add(-clockSlack), to: res.CompletedAt.Add(confirmAfter)}
	st.Confirmation, err = findFirst[events.Confirmation](ctx, c.js, cw, id)
	return st, err
}

// resultWindow is where the command's result events are: around its
// ledger record, else since since (noted in Searched).
func (st *CommandStatus) resultWindow(since time.Time) scanWindow {
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
	return w
}

// pending returns the pending confirmation of a command, or nil.
func (c *Client) pending(ctx context.Context, agent int, id string) (*events.Pending, error) {
	kv, err := c.js.KeyValue(ctx, events.BucketPending)
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

// Mask masks the numbers in st with m (for output that prints the
// status whole, such as JSON).
func (st *CommandStatus) Mask(m Masker) {
	if m.Reveal {
		return
	}
	maskResult := func(r *events.Result) {
		if r != nil {
			r.Reason, r.Number = m.Text(r.Reason, r.Number), m.Number(r.Number)
		}
	}
	if st.Ledger != nil {
		maskResult(st.Ledger.Result)
	}
	if st.ResultEvent != nil {
		maskResult(&st.ResultEvent.Value)
	}
	if st.Pending != nil {
		st.Pending.Number = m.Number(st.Pending.Number)
	}
	if st.Confirmation != nil {
		st.Confirmation.Value.Number = m.Number(st.Confirmation.Value.Number)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
