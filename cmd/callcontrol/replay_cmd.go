package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
)

// replayFlags are the settings of dlq replay.
type replayFlags struct {
	inf   inspectFlags
	ff    filterFlags
	all   bool
	force bool
	ttl   time.Duration
}

func (f *replayFlags) register(s *settings) {
	f.inf.register(s)
	f.ff.register(s, 1000)
	s.fs.BoolVar(&f.all, "all", false, "replay every dead letter matching --status, --since, --agent, --limit")
	s.fs.BoolVar(&f.force, "force", false, "replay commands past their deadline (or with an unknown outcome): issued_at becomes now, ttl_ms --ttl")
	s.fs.DurationVar(&f.ttl, "ttl", 0, "with --force: the new lifetime of each replayed command, 1ms-1h (required)")
}

// check validates the flag combination against the positional arguments.
func (f *replayFlags) check(pos []string) error {
	switch {
	case len(pos) == 0 && !f.all:
		return errors.New("dlq replay: name at least one command_id or dead-letter sequence number, or pass --all")
	case len(pos) > 0 && f.all:
		return errors.New("dlq replay: give either command_ids/sequence numbers or --all, not both")
	case !f.all && (f.ff.status != "" || f.ff.since != "" || f.ff.agent != 0):
		return errors.New("dlq replay: --status, --since and --agent select dead letters only with --all")
	case f.force && f.ttl == 0:
		return fmt.Errorf("--ttl (CALLCONTROL_TTL): required with --force: the new lifetime of the replayed command, 1ms-%s", events.MaxTTL)
	case !f.force && f.ttl != 0:
		return errors.New("--ttl (CALLCONTROL_TTL): applies only with --force (otherwise the original deadline is kept)")
	case f.force && (f.ttl < time.Millisecond || f.ttl > events.MaxTTL):
		return fmt.Errorf("--ttl (CALLCONTROL_TTL): must be between 1ms and %s, got %s", events.MaxTTL, f.ttl)
	}
	for _, ref := range pos {
		if err := admin.CheckRef(ref); err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
	}
	return nil
}

// replayReport is one line of dlq replay's output.
type replayReport struct {
	CommandID string    `json:"command_id"`
	DLQSeq    uint64    `json:"dlq_seq"`
	Replayed  bool      `json:"replayed"`
	MsgID     string    `json:"msg_id,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Notes     []string  `json:"notes,omitempty"`
	Refused   string    `json:"refused,omitempty"`
}

// runDLQReplay republishes dead-lettered commands (see [admin.Client.Replay]).
// It exits 1 when any of them was not replayed, after reporting each.
func runDLQReplay(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("dlq replay", stdout)
	var f replayFlags
	f.register(s)
	pos, err := parseArgs(s, args)
	if err != nil {
		return err
	}
	if err := f.check(pos); err != nil {
		return err
	}
	filter, err := f.ff.filter()
	if err != nil {
		return err
	}
	ctx, c, done, err := f.inf.nf.client(ctx, "cli", f.inf.timeout)
	if err != nil {
		return err
	}
	defer done()
	targets, err := replayTargets(ctx, c, pos, f.all, filter)
	if err != nil {
		return err
	}
	opts := admin.ReplayOptions{Force: f.force, TTL: f.ttl, Masker: admin.Masker{Reveal: f.inf.reveal}}
	return replayAll(ctx, c, targets, opts, f.inf.asJSON, stdout)
}

// replayAll replays each target, reporting each, and fails when any was
// not replayed.
func replayAll(ctx context.Context, c *admin.Client, targets []admin.DeadLetter, opts admin.ReplayOptions, asJSON bool, stdout io.Writer) error {
	reports, refused := make([]replayReport, 0, len(targets)), 0
	for _, d := range targets {
		rep := replayReport{CommandID: d.CommandID, DLQSeq: d.Seq}
		res, err := c.Replay(ctx, d, opts)
		if err != nil {
			rep.Refused, refused = err.Error(), refused+1
		} else {
			rep.Replayed, rep.MsgID, rep.Duplicate, rep.Notes = true, res.MsgID, res.Duplicate, res.Notes
			if !res.Duplicate {
				rep.Deadline = res.Deadline.UTC()
			}
		}
		reports = append(reports, rep)
		if !asJSON {
			printReplay(stdout, rep, d, opts.Masker)
		}
	}
	if asJSON {
		if err := writeJSON(stdout, reports); err != nil {
			return err
		}
	}
	if refused > 0 {
		return fmt.Errorf("dlq replay: %d of %d dead letters not replayed", refused, len(targets))
	}
	return nil
}

// replayTargets resolves the arguments (or --all) to dead letters. A
// command_id stands for its newest dead letter; --all replays each command
// once, from its newest dead letter.
func replayTargets(ctx context.Context, c *admin.Client, pos []string, all bool, f admin.DeadLetterFilter) ([]admin.DeadLetter, error) {
	if all {
		out, err := c.NewestDeadLetters(ctx, f)
		if err == nil && len(out) == 0 {
			return nil, errors.New("dlq replay --all: no dead letter matches the filters")
		}
		return out, err
	}
	var out []admin.DeadLetter
	for _, ref := range pos {
		list, err := c.FindDeadLetters(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("dlq replay %s: %w", ref, err)
		}
		out = append(out, list[len(list)-1])
	}
	return out, nil
}

func printReplay(w io.Writer, rep replayReport, d admin.DeadLetter, nm admin.Masker) {
	if rep.Refused != "" {
		fmt.Fprintf(w, "%-11s command=%s dlq_seq=%d: %s\n", "refused", dash(rep.CommandID), rep.DLQSeq, rep.Refused)
		return
	}
	deadline := rep.Deadline.Format(time.RFC3339Nano)
	if rep.Duplicate {
		deadline = "(the earlier attempt's)"
		rep.Notes = append(rep.Notes, "an earlier attempt of this replay was stored already (same Nats-Msg-Id): not stored twice")
	}
	fmt.Fprintf(w, "%-11s command=%s dlq_seq=%d agent=%d number=%s msg_id=%s deadline=%s\n", "replayed", rep.CommandID, rep.DLQSeq,
		d.Cmd.AgentID, nm.Number(d.Cmd.Number), rep.MsgID, deadline)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
