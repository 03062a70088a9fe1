package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/worker"
)

// status finds accepted and failed commands and answers "not found" (exit
// 1, an error) for unknown ones.
func TestStatusUnknownCommand(t *testing.T) {
	natsURL, _ := testJetStream(t, worker.Config{})
	var out bytes.Buffer
	err := run(context.Background(), []string{"status", "no-such-command", "--nats-url", natsURL}, &out)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("status of an unknown command: %v\n%s", err, out.String())
	}
	var exit exitError
	if errors.As(err, &exit) {
		t.Fatal("not found must be an error (exit 1), not a silent exit code")
	}
}

// Every bad argument is refused, naming the argument or flag and the rule,
// before anything is read or published.
func TestInspectionInputErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"dlq"}, "missing subcommand"},
		{[]string{"dlq", "purge"}, `unknown subcommand "purge"`},
		{[]string{"dlq", "list", "--status", "done"}, "--status (CALLCONTROL_STATUS): must be failed, expired or rejected"},
		{[]string{"dlq", "list", "--limit", "0"}, "--limit (CALLCONTROL_LIMIT): must be between 1 and 100000"},
		{[]string{"dlq", "list", "--since", "yesterday"}, "--since (CALLCONTROL_SINCE)"},
		{[]string{"dlq", "list", "--agent", "5"}, "--agent (CALLCONTROL_AGENT): must be between 101 and 59999"},
		{[]string{"dlq", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"dlq", "show"}, "want exactly one argument"},
		{[]string{"dlq", "show", "a/b"}, "neither a dead-letter sequence number nor a command_id"},
		{[]string{"dlq", "show", "0"}, "start at 1"},
		{[]string{"dlq", "replay"}, "name at least one command_id"},
		{[]string{"dlq", "replay", "x", "--all"}, "not both"},
		{[]string{"dlq", "replay", "x", "--status", "failed"}, "only with --all"},
		{[]string{"dlq", "replay", "x", "--force"}, "--ttl (CALLCONTROL_TTL): required with --force"},
		{[]string{"dlq", "replay", "x", "--ttl", "5s"}, "--ttl (CALLCONTROL_TTL): applies only with --force"},
		{[]string{"dlq", "replay", "x", "--force", "--ttl", "2h"}, "--ttl (CALLCONTROL_TTL): must be between 1ms and 1h0m0s"},
		{[]string{"dlq", "replay", "x y"}, "neither a dead-letter sequence number nor a command_id"},
		{[]string{"status"}, "want exactly one argument, a command_id"},
		{[]string{"status", "a", "b"}, "want exactly one argument"},
		{[]string{"status", "bad id"}, "command_id must be 1-64 letters"},
		{[]string{"status", "x", "--since", "-1h"}, "--since (CALLCONTROL_SINCE)"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// An unreachable server: the error must come before connecting.
			err := run(context.Background(), append(c.args, "--nats-url", "nats://127.0.0.1:1"), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// help lists the new commands and the exit codes.
func TestHelpListsExitCodes(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "help", out.String(), "dlq ", "status ", "Exit codes:", "(status) command not found")
}
