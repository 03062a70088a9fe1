package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deadLetter is one message of [events.SubjectDeadLetter]: a copy of a
// command the worker gave up on, with the outcome in its headers.
type deadLetter struct {
	Seq       uint64
	Time      time.Time
	CommandID string
	Status    events.Status
	Reason    string
	Header    nats.Header
	Payload   []byte
	Cmd       events.DisconnectCommand // the readable fields of Payload
	DecodeErr error                    // why Payload is not a valid command, if it is not
}

func newDeadLetter(seq uint64, t time.Time, h nats.Header, data []byte) deadLetter {
	d := deadLetter{Seq: seq, Time: t, Header: h, Payload: data,
		CommandID: h.Get(events.HeaderCommandID), Status: events.Status(h.Get(events.HeaderStatus)),
		Reason: h.Get(events.HeaderReason)}
	d.Cmd, d.DecodeErr = events.DecodeDisconnect(data)
	return d
}

func deadLetterFromMsg(m jetstream.Msg) deadLetter {
	meta, _ := m.Metadata()
	var seq uint64
	var t time.Time
	if meta != nil {
		seq, t = meta.Sequence.Stream, meta.Timestamp
	}
	return newDeadLetter(seq, t, m.Headers(), m.Data())
}

// numberMasker hides a phone number in human output unless reveal is set.
type numberMasker struct{ reveal bool }

// number returns n, masked unless revealed.
func (nm numberMasker) number(n string) string {
	if nm.reveal {
		return n
	}
	return events.MaskNumber(n)
}

// text masks every occurrence of number n in s (gateway messages and
// reasons may echo it).
func (nm numberMasker) text(s, n string) string {
	if nm.reveal || n == "" {
		return s
	}
	return strings.ReplaceAll(s, n, events.MaskNumber(n))
}

// deadLetterFilter selects dead letters for list and replay --all.
type deadLetterFilter struct {
	statuses map[events.Status]bool // empty: all
	since    time.Time              // zero: from the first
	agent    int                    // 0: all
	limit    int                    // the newest limit entries
}

func (f deadLetterFilter) match(d deadLetter) bool {
	return (len(f.statuses) == 0 || f.statuses[d.Status]) && (f.agent == 0 || d.Cmd.AgentID == f.agent)
}

// listDeadLetters returns the newest f.limit dead letters matching f, in
// stream order. Cost: every dead letter stored since f.since is read
// (server-side filtered to the dead-letter subject, so max-deliveries
// advisories are skipped by the server).
func listDeadLetters(ctx context.Context, js jetstream.JetStream, f deadLetterFilter) ([]deadLetter, error) {
	var out []deadLetter
	w := scanWindow{stream: events.StreamDeadLetter, subject: events.SubjectDeadLetter, from: f.since}
	err := scan(ctx, js, w, func(m jetstream.Msg) bool {
		if d := deadLetterFromMsg(m); f.match(d) {
			out = append(out, d)
			if f.limit > 0 && len(out) > f.limit {
				out = out[1:]
			}
		}
		return true
	})
	return out, err
}

// errNoDeadLetter means that no dead letter has the asked command_id or
// sequence.
var errNoDeadLetter = errors.New("no such dead letter")

// findDeadLetters resolves ref, a dead-letter stream sequence (digits) or
// a command_id, to its dead letters, oldest first: one for a sequence,
// every copy for a command_id (a replayed command may have failed again).
// A command_id costs a read of the whole dead-letter subject: the stream
// has no index on the header.
func findDeadLetters(ctx context.Context, js jetstream.JetStream, ref string) ([]deadLetter, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	if seq, err := strconv.ParseUint(ref, 10, 64); err == nil {
		st, err := js.Stream(ctx, events.StreamDeadLetter)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", events.StreamDeadLetter, err)
		}
		raw, err := st.GetMsg(ctx, seq)
		switch {
		case err == nil && raw.Subject == events.SubjectDeadLetter:
			return []deadLetter{newDeadLetter(raw.Sequence, raw.Time, raw.Header, raw.Data)}, nil
		case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, fmt.Errorf("stream %s: %w", events.StreamDeadLetter, err)
		}
		// Not a dead letter's sequence: perhaps a command_id of digits.
		list, err := findByCommandID(ctx, js, ref)
		if errors.Is(err, errNoDeadLetter) {
			err = fmt.Errorf("%w: %s is neither the sequence of a dead letter in %s nor a dead-lettered command_id", errNoDeadLetter, ref, events.StreamDeadLetter)
		}
		return list, err
	}
	return findByCommandID(ctx, js, ref)
}

// findByCommandID returns every dead letter of command id, oldest first.
func findByCommandID(ctx context.Context, js jetstream.JetStream, ref string) ([]deadLetter, error) {
	var out []deadLetter
	w := scanWindow{stream: events.StreamDeadLetter, subject: events.SubjectDeadLetter}
	err := scan(ctx, js, w, func(m jetstream.Msg) bool {
		if m.Headers().Get(events.HeaderCommandID) == ref {
			out = append(out, deadLetterFromMsg(m))
		}
		return true
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%w: no dead letter for command_id %s", errNoDeadLetter, ref)
	}
	return out, err
}

// checkRef validates a dead-letter reference: a sequence number (1 or
// more) or a command_id. Digits only are a sequence number first, then a
// command_id.
func checkRef(ref string) error {
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

// safePayload renders a dead letter's payload for display: the number
// masked (unless revealed) and the guid override always replaced. A
// payload that is not a JSON object is not shown at all: it may hold
// either secret where no field name says so.
func safePayload(d deadLetter, nm numberMasker) (json.RawMessage, string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(d.Payload, &obj); err != nil || obj == nil {
		return nil, fmt.Sprintf("%d bytes, not a JSON object: not shown (it may hold a number or a GUID)", len(d.Payload))
	}
	if _, ok := obj["guid"]; ok {
		obj["guid"] = json.RawMessage(`"[redacted]"`)
	}
	if raw, ok := obj["number"]; ok && !nm.reveal {
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

// sortedHeaders returns the header names of h in order.
func sortedHeaders(h nats.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
