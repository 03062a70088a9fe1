package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// newAdmin returns the operator API over js. connect never returns a nil
// js, the only thing admin.New refuses: a panic here is a programming error.
func newAdmin(js jetstream.JetStream) *admin.Client {
	c, err := admin.New(js)
	if err != nil {
		panic(err)
	}
	return c
}

// client connects to NATS as callcontrol-<name> (see natsFlags.connect)
// and returns the operator API and ctx bounded by timeout (0: not
// bounded); done cancels that context and closes the connection.
func (n *natsFlags) client(ctx context.Context, name string, timeout time.Duration) (context.Context, *admin.Client, func(), error) {
	nc, js, err := n.connect(name)
	if err != nil {
		return ctx, nil, nil, err
	}
	cancel := context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	return ctx, newAdmin(js), func() { cancel(); nc.Close() }, nil
}

// inspectFlags are the settings of the inspection commands.
type inspectFlags struct {
	nf      natsFlags
	asJSON  bool
	reveal  bool
	timeout time.Duration
}

func (f *inspectFlags) register(s *settings) {
	f.nf.register(s, defaultNATSURL)
	output := s.group(groupOutput)
	s.fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
	s.fs.BoolVar(&f.reveal, "reveal-number", false, "print phone numbers in full (masked by default)")
	output()
	s.fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long the command may take")
}

// parseArgs parses flags and positional arguments in any order (the flag
// package stops at the first argument), after the environment.
func parseArgs(s *settings, args []string) ([]string, error) {
	if err := s.parse(nil); err != nil { // the environment
		return nil, err
	}
	var pos []string
	for {
		if err := s.parseFlags(args); err != nil {
			return nil, err
		}
		if s.fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, s.fs.Arg(0)), s.fs.Args()[1:]
	}
}

// parseSince reads --since: a duration back from now ("2h") or an RFC 3339
// time. "" means from the first stored message.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since (CALLCONTROL_SINCE): must be a positive duration like 2h or an RFC 3339 time, got %q", v)
}

// parseStatuses reads --status: a comma-separated list of dead-letter
// statuses.
func parseStatuses(v string) (map[events.Status]bool, error) {
	if v == "" {
		return nil, nil
	}
	out := map[events.Status]bool{}
	for _, s := range strings.Split(v, ",") {
		st := events.Status(strings.TrimSpace(s))
		switch st {
		case events.StatusFailed, events.StatusExpired, events.StatusRejected:
			out[st] = true
		default:
			return nil, fmt.Errorf("--status (CALLCONTROL_STATUS): must be failed, expired or rejected (comma separated), got %q", s)
		}
	}
	return out, nil
}

// checkAgentFlag fails unless id, the value of --agent, is an agent ID,
// or 0 (not set) when the flag is optional.
func checkAgentFlag(id int, optional bool) error {
	if !events.ValidAgentID(id) && !(optional && id == 0) {
		return fmt.Errorf("--agent (CALLCONTROL_AGENT): must be between %d and %d, got %d", events.AgentIDMin, events.AgentIDMax, id)
	}
	return nil
}

// filterFlags are the dead-letter filters of list and replay --all.
type filterFlags struct {
	status, since string
	agent, limit  int
}

func (f *filterFlags) register(s *settings, defLimit int) {
	s.fs.StringVar(&f.status, "status", "", "only these statuses: failed, expired, rejected (comma separated)")
	s.fs.StringVar(&f.since, "since", "", "only dead letters stored since then: a duration back from now (2h) or an RFC 3339 time")
	s.fs.IntVar(&f.agent, "agent", 0, "only commands for this agent ID")
	s.fs.IntVar(&f.limit, "limit", defLimit, "at most this many (the newest), 1-100000")
}

func (f *filterFlags) filter() (admin.DeadLetterFilter, error) {
	var out admin.DeadLetterFilter
	var err error
	if out.Statuses, err = parseStatuses(f.status); err != nil {
		return out, err
	}
	if out.Since, err = parseSince(f.since, time.Now()); err != nil {
		return out, err
	}
	if err := checkAgentFlag(f.agent, true); err != nil {
		return out, err
	}
	if f.limit < 1 || f.limit > 100000 {
		return out, fmt.Errorf("--limit (CALLCONTROL_LIMIT): must be between 1 and 100000, got %d", f.limit)
	}
	out.Agent, out.Limit = f.agent, f.limit
	return out, nil
}
