package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is one message of [events.SubjectDeadLetter]: a copy of a
// command the worker gave up on, with the outcome in its headers.
type DeadLetter struct {
	Seq       uint64                   // stream sequence in [events.StreamDeadLetter]
	Time      time.Time                // when it was stored
	CommandID string                   // the Callcontrol-Command-Id header
	Status    events.Status            // failed, expired or rejected
	Reason    string                   // why the worker gave up (may echo the number)
	Header    nats.Header              // every header, as stored
	Payload   []byte                   // the original command, as published
	Cmd       events.DisconnectCommand // the readable fields of Payload
	DecodeErr error                    // why Payload is not a valid command, if it is not
}

func newDeadLetter(seq uint64, t time.Time, h nats.Header, data []byte) DeadLetter {
	d := DeadLetter{Seq: seq, Time: t, Header: h, Payload: data,
		CommandID: h.Get(events.HeaderCommandID), Status: events.Status(h.Get(events.HeaderStatus)),
		Reason: h.Get(events.HeaderReason)}
	d.Cmd, d.DecodeErr = events.DecodeDisconnect(data)
	return d
}

func deadLetterFromMsg(m jetstream.Msg) DeadLetter {
	meta, _ := m.Metadata()
	var seq uint64
	var t time.Time
	if meta != nil {
		seq, t = meta.Sequence.Stream, meta.Timestamp
	}
	return newDeadLetter(seq, t, m.Headers(), m.Data())
}

// DeadLetterFilter selects dead letters. The zero value selects all.
type DeadLetterFilter struct {
	Statuses map[events.Status]bool // empty: all
	Since    time.Time              // zero: from the first
	Agent    int                    // 0: all
	Limit    int                    // the newest Limit entries; 0: all
}

func (f DeadLetterFilter) match(d DeadLetter) bool {
	return (len(f.Statuses) == 0 || f.Statuses[d.Status]) && (f.Agent == 0 || d.Cmd.AgentID == f.Agent)
}

// DeadLetters returns the newest f.Limit dead letters matching f, in
// stream order. Cost: every dead letter stored since f.Since is read
// (server-side filtered to the dead-letter subject, so max-deliveries
// advisories are skipped by the server).
func (c *Client) DeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	w := scanWindow{stream: events.StreamDeadLetter, subject: events.SubjectDeadLetter, from: f.Since}
	err := scan(ctx, c.js, w, func(m jetstream.Msg) bool {
		if d := deadLetterFromMsg(m); f.match(d) {
			out = append(out, d)
			if f.Limit > 0 && len(out) > f.Limit {
				out = out[1:]
			}
		}
		return true
	})
	return out, err
}

// NewestDeadLetters returns, of the dead letters f selects, each command's
// newest, in stream order: what a replay of all of them replays, once per
// command (a replayed command that failed again has several copies).
// f.Limit counts the dead letters selected, before this reduction.
func (c *Client) NewestDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	list, err := c.DeadLetters(ctx, f)
	if err != nil {
		return nil, err
	}
	newest := map[string]int{}
	for i, d := range list {
		newest[d.CommandID] = i
	}
	var out []DeadLetter
	for i, d := range list {
		if newest[d.CommandID] == i {
			out = append(out, d)
		}
	}
	return out, nil
}

// ErrNoDeadLetter means that no dead letter has the asked command_id or
// sequence.
var ErrNoDeadLetter = errors.New("no such dead letter")

// FindDeadLetters resolves ref, a dead-letter stream sequence (digits) or
// a command_id, to its dead letters, oldest first: one for a sequence,
// every copy for a command_id (a replayed command may have failed again).
// It fails with [ErrNoDeadLetter] when there is none, and with the error
// of [CheckRef] for a malformed ref. A command_id costs a read of the
// whole dead-letter subject: the stream has no index on the header.
func (c *Client) FindDeadLetters(ctx context.Context, ref string) ([]DeadLetter, error) {
	if err := CheckRef(ref); err != nil {
		return nil, err
	}
	seq, err := strconv.ParseUint(ref, 10, 64)
	if err != nil {
		return c.byCommandID(ctx, ref)
	}
	d, err := c.DeadLetter(ctx, seq)
	if err == nil {
		return []DeadLetter{d}, nil
	}
	if !errors.Is(err, ErrNoDeadLetter) {
		return nil, err
	}
	// Not a dead letter's sequence: perhaps a command_id of digits.
	list, err := c.byCommandID(ctx, ref)
	if errors.Is(err, ErrNoDeadLetter) {
		err = fmt.Errorf("%w: %s is neither the sequence of a dead letter in %s nor a dead-lettered command_id", ErrNoDeadLetter, ref, events.StreamDeadLetter)
	}
	return list, err
}

// DeadLetter returns the dead letter stored at seq, or [ErrNoDeadLetter]
// when seq holds none (never stored, deleted, or not a dead letter). O(1).
func (c *Client) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	st, err := c.js.Stream(ctx, events.StreamDeadLetter)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("stream %s: %w", events.StreamDeadLetter, err)
	}
	raw, err := st.GetMsg(ctx, seq)
	switch {
	case err == nil && raw.Subject == events.SubjectDeadLetter:
		return newDeadLetter(raw.Sequence, raw.Time, raw.Header, raw.Data), nil
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return DeadLetter{}, fmt.Errorf("stream %s: %w", events.StreamDeadLetter, err)
	}
	return DeadLetter{}, fmt.Errorf("%w: sequence %d", ErrNoDeadLetter, seq)
}

// byCommandID returns every dead letter of command id, oldest first.
func (c *Client) byCommandID(ctx context.Context, ref string) ([]DeadLetter, error) {
	var out []DeadLetter
	w := scanWindow{stream: events.StreamDeadLetter, subject: events.SubjectDeadLetter}
	err := scan(ctx, c.js, w, func(m jetstream.Msg) bool {
		if m.Headers().Get(events.HeaderCommandID) == ref {
			out = append(out, deadLetterFromMsg(m))
		}
		return true
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%w: no dead letter for command_id %s", ErrNoDeadLetter, ref)
	}
	return out, err
}

// CheckRef validates a dead-letter reference: a sequence number (1 or
// more) or a command_id. Digits only are a sequence number first, then a
// command_id.
func CheckRef(ref string) error {
	if seq, err := strconv.ParseUint(ref, 10, 64); err == nil {
		if seq == 0 {
			return errors.New("dead-letter sequence numbers start at 1, got 0")
		}
		return nil
	}
	if !events.ValidCommandID(ref) {
		return fmt.Errorf("%q is neither a dead-letter sequence number nor a command_id (1-%d letters, digits, '-' or '_')", ref, events.MaxCommandIDLen)
	}
	return nil
}

// SafePayload renders a dead letter's payload for display, indented: the
// number masked (unless m reveals it) and the guid override always
// replaced. A payload that is not a JSON object is not shown at all (it
// may hold either secret where no field name says so): then the payload
// is nil and note says why.
func (d DeadLetter) SafePayload(m Masker) (payload json.RawMessage, note string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(d.Payload, &obj); err != nil || obj == nil {
		return nil, fmt.Sprintf("%d bytes, not a JSON object: not shown (it may hold a number or a GUID)", len(d.Payload))
	}
	if _, ok := obj["guid"]; ok {
		obj["guid"] = json.RawMessage(`"[redacted]"`)
	}
	if raw, ok := obj["number"]; ok && !m.Reveal {
		var n string
		if json.Unmarshal(raw, &n) == nil {
			obj["number"], _ = json.Marshal(events.MaskNumber(n))
		} else {
			obj["number"] = json.RawMessage(`"[not a string: hidden]"`)
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, "not shown: " + err.Error()
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, b, "", "  ")
	return pretty.Bytes(), ""
}

// HeaderNames returns the names of d's headers in order.
func (d DeadLetter) HeaderNames() []string {
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
