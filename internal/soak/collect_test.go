//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// stored is one message read back from a stream.
type stored struct {
	Stream  string
	Seq     uint64
	Time    time.Time
	Subject string
	Header  map[string][]string
	Data    []byte
}

func (m stored) msgID() string { return firstOf(m.Header, events.HeaderMsgID) }

func firstOf(h map[string][]string, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// read returns the messages of stream (matching filter, "" for all) from
// sequence from on, up to its last message when read started.
func read(ctx context.Context, js jetstream.JetStream, stream, filter string, from uint64) ([]stored, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || last < from {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var out []stored
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out, err
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = meta.NumPending
			out = append(out, stored{Stream: stream, Seq: meta.Sequence.Stream, Time: meta.Timestamp,
				Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if meta.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, err
		}
		if n == 0 || (pending == 0 && n > 0) {
			return out, nil // nothing more matches the filter
		}
	}
}

// followDLQ polls the dead-letter stream during the run and keeps the
// failed commands as targets for `dlq replay`.
func (r *runner) followDLQ(ctx context.Context) {
	var next uint64 = 1
	for ctx.Err() == nil {
		msgs, _ := read(ctx, r.js, events.StreamDeadLetter, events.SubjectDeadLetter, next)
		for _, m := range msgs {
			next = m.Seq + 1
			id := firstOf(m.Header, events.HeaderCommandID)
			if firstOf(m.Header, events.HeaderStatus) != string(events.StatusFailed) || id == "" {
				continue
			}
			r.mu.Lock()
			if !r.dlqSeen[id+"@"+fmt.Sprint(m.Seq)] {
				r.dlqSeen[id+"@"+fmt.Sprint(m.Seq)] = true
				if !slices.Contains(r.dlq, id) {
					r.dlq = append(r.dlq, id)
				}
			}
			r.mu.Unlock()
		}
		sleepCtx(ctx, 2*time.Second)
	}
}

// expectedResultMsgID is the Nats-Msg-Id of the result a command must get.
func expectedResultMsgID(c Command) string {
	if c.Kind == "replay" {
		// replay-<command_id>-<n> with Callcontrol-Replay-Of <dlq seq>:
		// filled in settle from the stored command.
		return ""
	}
	return events.ResultMsgID(c.MsgID)
}

// waitResults waits (up to within) until every command has a result and
// returns the keys still missing.
func (r *runner) waitResults(ctx context.Context, within time.Duration) []string {
	seen := map[string]bool{}
	var next uint64 = 1
	deadline := time.Now().Add(within)
	for {
		msgs, _ := read(ctx, r.js, events.StreamResults, "", next)
		for _, m := range msgs {
			next = m.Seq + 1
			seen[m.msgID()] = true
		}
		r.mu.Lock()
		var missing []string
		for _, c := range r.cmds {
			if k := expectedResultMsgID(c); k != "" && c.MsgID != "" && !seen[k] {
				missing = append(missing, k)
			}
		}
		for _, k := range r.replayKeys {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return missing
		}
		sleepCtx(ctx, time.Second)
	}
}

// waitPending waits (up to within) until no accepted command awaits its
// confirmation, and returns how many still do.
func (r *runner) waitPending(ctx context.Context, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		n := -1
		if kv, err := r.js.KeyValue(ctx, events.BucketPending); err == nil {
			if keys, err := kv.ListKeys(ctx); err == nil {
				n = 0
				for range keys.Keys() {
					n++
				}
			}
		}
		if n == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		sleepCtx(ctx, time.Second)
	}
}

// settle reads every stream and fills the history's results,
// confirmations, streams and the stored times and deadlines of the
// commands.
func (r *runner) settle(ctx context.Context, h *History, defaultTTL, maxSkew time.Duration) error {
	names := r.js.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if err := names.Err(); err != nil {
		return err
	}
	sort.Strings(streams)
	// A command the generator published with a guid override carries the
	// GUID by design (the requester sent it): it is left out of Streams.
	// Whatever the system itself published (replays included) stays in.
	overrides := map[string]bool{}
	for _, c := range h.Commands {
		if c.Kind != "replay" && strings.Contains(c.Payload, `"guid":"`) {
			overrides[c.MsgID] = true
		}
	}
	var commands []stored
	for _, name := range streams {
		msgs, err := read(ctx, r.js, name, "", 1)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		for _, m := range msgs {
			// The session registry holds GUIDs by design: it is where the
			// workers read them from. Everything else must not.
			if name != "KV_"+events.BucketSessions && !(name == events.StreamCommands && overrides[m.msgID()]) {
				h.Streams = append(h.Streams, format(m))
			}
			switch {
			case name == events.StreamCommands:
				commands = append(commands, m)
			case name == events.StreamResults:
				var v events.Result
				_ = json.Unmarshal(m.Data, &v)
				h.Results = append(h.Results, Observed[events.Result]{Seq: m.Seq, Stored: m.Time, Subject: m.Subject, MsgID: m.msgID(), Value: v})
			case name == events.StreamEvents && strings.HasPrefix(m.Subject, events.SubjectConfirmations+"."):
				var v events.Confirmation
				_ = json.Unmarshal(m.Data, &v)
				h.Confirmations = append(h.Confirmations, Observed[events.Confirmation]{Seq: m.Seq, Stored: m.Time, Subject: m.Subject, MsgID: m.msgID(), Value: v})
			}
		}
	}
	bySeq, byMsgID := map[uint64]stored{}, map[string]stored{}
	for _, m := range commands {
		bySeq[m.Seq] = m
		if id := m.msgID(); id != "" {
			byMsgID[id] = m
		}
	}
	for i := range h.Commands {
		c := &h.Commands[i]
		if c.Kind == "replay" {
			m, ok := byMsgID[c.MsgID]
			if !ok {
				continue
			}
			c.Seq, c.Payload = m.Seq, string(m.Data)
			c.TraceID = traceID(firstOf(m.Header, events.HeaderTraceparent))
		}
		m, ok := bySeq[c.Seq]
		if c.Seq == 0 || !ok {
			continue
		}
		c.Stored = m.Time
		dc, err := events.DecodeDisconnect(m.Data)
		if err != nil {
			continue
		}
		if c.Kind == "replay" || c.Deadline.IsZero() {
			c.Deadline = dc.Deadline(c.Stored, defaultTTL)
		}
		if c.Kind == "skewed" {
			// The rule of README "Subjects and payloads": issued_at at most
			// --max-clock-skew after the stored time.
			c.Valid = dc.IssuedAt.Sub(c.Stored) <= maxSkew
		}
	}
	return nil
}

// format renders a stored message for the secrets check.
func format(m stored) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream=%s seq=%d subject=%s\n", m.Stream, m.Seq, m.Subject)
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range m.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(m.Data)
	return b.String()
}
