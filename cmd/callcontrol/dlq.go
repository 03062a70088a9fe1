package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
)

const dlqUsage = `usage: callcontrol dlq <list|show|replay> [flags] [args]

  list                          dead letters: sequence, time, command_id, status, reason, agent, number
  show <command_id|seq>         one dead letter's headers and original payload
  replay <command_id|seq>...    publish the original command again, keeping its command_id
  replay --all [filters]        replay every matching dead letter

A reference of digits only is a dead-letter sequence number first, then a command_id.
Run 'callcontrol dlq <subcommand> -h' for its flags.
`

// runDLQ dispatches the dead-letter subcommands.
func runDLQ(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return usageError{errors.New("dlq: missing subcommand: want list, show or replay")}
	}
	switch args[0] {
	case "list":
		return runDLQList(ctx, args[1:], stdout)
	case "show":
		return runDLQShow(ctx, args[1:], stdout)
	case "replay":
		return runDLQReplay(ctx, args[1:], stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, dlqUsage)
		return nil
	}
	fmt.Fprint(stderr, dlqUsage)
	if strings.HasPrefix(args[0], "-") {
		return usageError{fmt.Errorf("dlq: missing subcommand before %s: want list, show or replay", args[0])}
	}
	return usageError{fmt.Errorf("dlq: unknown subcommand %q: want list, show or replay", args[0])}
}

// deadLetterView is a dead letter as list prints it.
type deadLetterView struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	CommandID string    `json:"command_id"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
	AgentID   int       `json:"agent_id,omitempty"`
	Number    string    `json:"number,omitempty"`
}

func viewDeadLetter(d admin.DeadLetter, nm admin.Masker) deadLetterView {
	v := deadLetterView{Seq: d.Seq, Time: d.Time.UTC(), CommandID: d.CommandID, Status: string(d.Status),
		Reason: nm.Text(d.Reason, d.Cmd.Number), AgentID: d.Cmd.AgentID}
	if d.Cmd.Number != "" {
		v.Number = nm.Number(d.Cmd.Number)
	}
	return v
}

// runDLQList prints the dead letters matching the filters.
func runDLQList(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("dlq list", stdout)
	var (
		inf inspectFlags
		ff  filterFlags
	)
	inf.register(s)
	ff.register(s, 100)
	pos, err := parseArgs(s, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("dlq list: unexpected argument %q (use the filter flags)", pos[0])
	}
	f, err := ff.filter()
	if err != nil {
		return err
	}
	ctx, c, done, err := inf.nf.client(ctx, "cli", inf.timeout)
	if err != nil {
		return err
	}
	defer done()
	list, err := c.DeadLetters(ctx, f)
	if err != nil {
		return err
	}
	nm := admin.Masker{Reveal: inf.reveal}
	views := make([]deadLetterView, 0, len(list))
	for _, d := range list {
		views = append(views, viewDeadLetter(d, nm))
	}
	if inf.asJSON {
		return writeJSON(stdout, views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCOMMAND_ID\tSTATUS\tAGENT\tNUMBER\tREASON")
	for _, v := range views {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Seq, v.Time.Format(time.RFC3339), dash(v.CommandID),
			v.Status, dash(itoa0(v.AgentID)), dash(v.Number), dash(v.Reason))
	}
	return tw.Flush()
}

// runDLQShow prints one dead letter: its headers and its original payload.
func runDLQShow(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("dlq show", stdout)
	var inf inspectFlags
	inf.register(s)
	pos, err := parseArgs(s, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("dlq show: want exactly one argument, a command_id or a dead-letter sequence number, got %d", len(pos))
	}
	if err := admin.CheckRef(pos[0]); err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	ctx, c, done, err := inf.nf.client(ctx, "cli", inf.timeout)
	if err != nil {
		return err
	}
	defer done()
	list, err := c.FindDeadLetters(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("dlq show %s: %w", pos[0], err)
	}
	return printDeadLetter(stdout, list, admin.Masker{Reveal: inf.reveal}, inf.asJSON)
}

// printDeadLetter prints the newest of list, a command's dead letters.
func printDeadLetter(stdout io.Writer, list []admin.DeadLetter, nm admin.Masker, asJSON bool) error {
	d := list[len(list)-1]
	payload, note := d.SafePayload(nm)
	headers := map[string]string{}
	for _, k := range d.HeaderNames() {
		headers[k] = nm.Text(d.Header.Get(k), d.Cmd.Number)
	}
	if asJSON {
		return writeJSON(stdout, struct {
			deadLetterView
			Headers     map[string]string `json:"headers"`
			Payload     json.RawMessage   `json:"payload,omitempty"`
			PayloadNote string            `json:"payload_note,omitempty"`
			Invalid     string            `json:"invalid,omitempty"`
			Copies      int               `json:"copies"`
		}{viewDeadLetter(d, nm), headers, payload, note, errString(d.DecodeErr), len(list)})
	}
	fmt.Fprintf(stdout, "dead letter %d stored %s (stream %s)\n", d.Seq, d.Time.UTC().Format(time.RFC3339Nano), events.StreamDeadLetter)
	if len(list) > 1 {
		fmt.Fprintf(stdout, "note: command %s has %d dead letters; this is the newest\n", d.CommandID, len(list))
	}
	fmt.Fprintln(stdout, "headers:")
	for _, k := range d.HeaderNames() {
		fmt.Fprintf(stdout, "  %s: %s\n", k, headers[k])
	}
	if d.DecodeErr != nil {
		fmt.Fprintf(stdout, "invalid command: %s (it cannot be replayed)\n", d.DecodeErr)
	}
	if note != "" {
		fmt.Fprintln(stdout, "payload:", note)
		return nil
	}
	fmt.Fprintf(stdout, "payload:\n%s\n", payload)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func itoa0(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
