package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
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
	ctx, c, done, err := nf.client(ctx, "watch", 0)
	if err != nil {
		return err
	}
	defer done()
	opts := admin.WatchOptions{FromStart: all, Events: withEvents}
	return c.Watch(ctx, opts, func(m admin.Message) {
		fmt.Fprintln(stdout, watchLine(m))
	})
}

// watchTime is the layout of the time watch prints: when JetStream stored
// the message, local time, to the millisecond. The date is there because
// with --all a message may be days old.
const watchTime = "2006-01-02 15:04:05.000"

// watchLine renders m as a line starting with the time the message was
// stored (not the time it is printed, which is later for every message of
// --all and for any that waited on a slow terminal).
func watchLine(m admin.Message) string {
	stored := "????-??-?? ??:??:??.???"
	if !m.Stored.IsZero() {
		stored = m.Stored.Local().Format(watchTime)
	}
	return stored + " " + render(m.Subject, m.Data)
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
