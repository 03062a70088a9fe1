package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// runWatch prints results and confirmations (and, with --events, every
// agent event) as they arrive, each with the time it was stored, until
// interrupted.
func runWatch(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("watch", stdout)
	var (
		nf              natsFlags
		all, withEvents bool
	)
	nf.register(s, defaultNATSURL)
	s.fs.BoolVar(&all, "all", false, "start from the first stored message instead of now")
	s.fs.BoolVar(&withEvents, "events", false, "also print every agent event")
	if err := s.parse(args); err != nil {
		return err
	}
	nc, js, err := nf.connect("watch")
	if err != nil {
		return err
	}
	defer nc.Close()
	lines := make(chan string)
	feeds := []struct{ stream, subject string }{
		{events.StreamResults, events.SubjectResults + ".>"},
		{events.StreamEvents, events.SubjectConfirmations + ".>"},
	}
	if withEvents {
		feeds = append(feeds, struct{ stream, subject string }{events.StreamEvents, events.SubjectAgentEvents + ".>"})
	}
	for _, f := range feeds {
		msgs, err := tail(ctx, js, f.stream, f.subject, all)
		if err != nil {
			return err
		}
		defer msgs.Stop()
		go feed(ctx, msgs, lines)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-lines:
			fmt.Fprintln(stdout, l)
		}
	}
}

// watchTime is the layout of the time watch prints: when JetStream stored
// the message, local time, to the millisecond. The date is there because
// with --all a message may be days old.
const watchTime = "2006-01-02 15:04:05.000"

// feed renders the messages of msgs as lines, each starting with the time
// the message was stored (not the time it is printed, which is later for
// every message of --all and for any that waited on a slow terminal),
// until msgs stops.
func feed(ctx context.Context, msgs jetstream.MessagesContext, lines chan<- string) {
	for {
		m, err := msgs.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return
		}
		if err != nil {
			continue
		}
		stored := "????-??-?? ??:??:??.???"
		if meta, err := m.Metadata(); err == nil {
			stored = meta.Timestamp.Local().Format(watchTime)
		}
		select {
		case lines <- stored + " " + render(m.Subject(), m.Data()):
		case <-ctx.Done():
			return
		}
	}
}

// render turns a result, confirmation or agent event into one line.
func render(subject string, data []byte) string {
	var (
		res  events.Result
		conf events.Confirmation
		ev   events.AgentEvent
	)
	switch {
	case hasPrefix(subject, events.SubjectResults) && json.Unmarshal(data, &res) == nil:
		return formatResult(res)
	case hasPrefix(subject, events.SubjectConfirmations) && json.Unmarshal(data, &conf) == nil:
		return formatConfirmation(conf)
	case json.Unmarshal(data, &ev) == nil:
		return fmt.Sprintf("%-11s agent=%d %s call=%s number=%s", "event", ev.AgentID, ev.Type, ev.CallID, events.MaskNumber(ev.Number))
	}
	return "undecodable message on " + subject
}

func hasPrefix(subject, prefix string) bool {
	return len(subject) > len(prefix) && subject[:len(prefix)] == prefix && subject[len(prefix)] == '.'
}
