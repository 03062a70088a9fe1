package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand of callcontrol. The registry, [commandList],
// is the one list of them: dispatch, the usage text and the help test all
// read it, so that a new command cannot be left out of any.
type command struct {
	name    string
	group   commandGroup
	args    string // the arguments after the flags in the synopsis, e.g. "<command_id>"
	summary string
	run     func(context.Context, []string, io.Writer) error
	// subs are the subcommands (dlq list, ...): each parses its own flags.
	subs []command
	// hidden commands work but are not offered (bench's child process).
	hidden bool
}

// commandGroup is a heading of the top-level usage text.
type commandGroup int

const (
	groupRoles commandGroup = iota
	groupClient
	groupMaintenance
)

func (g commandGroup) String() string {
	return [...]string{"roles (long-running)", "client commands", "maintenance"}[g]
}

// commandList returns the commands in the order the usage text lists them.
// (A function, not a variable: runHelp reads it, and a variable holding
// runHelp would depend on itself.)
func commandList() []command {
	return []command{
		{name: "dev", group: groupRoles, summary: "embedded NATS + gateway simulator + worker + poller, all in one process", run: runDev},
		{name: "worker", group: groupRoles, summary: "execute disconnect commands from JetStream against the gateway", run: runWorker},
		{name: "poller", group: groupRoles, summary: "long-poll the agents' gateway events, republish them, confirm disconnects", run: runPoller},
		{name: "api", group: groupRoles, summary: "the HTTP API: issue disconnects and follow results, agents and dead letters over HTTPS", run: runAPI},

		{name: "disconnect", group: groupClient, summary: "publish one disconnect command (--wait prints its result and confirmation)", run: runDisconnect},
		{name: "watch", group: groupClient, summary: "print results and confirmations (--events: agent events) as they arrive, with the time each was stored", run: runWatch},
		{name: "status", group: groupClient, args: "<command_id>", summary: "a command's ledger state, result, pending and confirmation", run: runStatus},
		{name: "agents", group: groupClient, summary: "the agents: session, poller, current call (ID, phase, masked parties, age)", run: runAgents},
		{name: "dlq", group: groupClient, args: "<list|show|replay> [args]", summary: "dead letters: list, show <command_id|seq>, replay <command_id|seq>... | --all", run: runDLQ,
			subs: []command{
				{name: "list", summary: "dead letters: sequence, time, command_id, status, reason, agent, number"},
				{name: "show", args: "<command_id|seq>", summary: "one dead letter's headers and original payload"},
				{name: "replay", args: "<command_id|seq>... | --all", summary: "publish dead-lettered commands again, keeping their command_id"},
			}},
		{name: "signin", group: groupClient, summary: "sign an agent in at the gateway and register its session", run: runSignIn},
		{name: "register", group: groupClient, summary: "register a GUID obtained elsewhere for an agent", run: runRegister},
		{name: "signout", group: groupClient, summary: "remove an agent's session (and log it out at the gateway)", run: runSignOut},

		{name: "gatewaysim", group: groupMaintenance, summary: "run the CC-Gateway simulator", run: runGatewaySim},
		{name: "bench", group: groupMaintenance, summary: "measure throughput, latency and scale against baselines in the same run", run: runBench},
		{name: "version", group: groupMaintenance, summary: "module version, VCS revision and Go version of this binary (also --version)", run: runVersion},
		{name: "help", group: groupMaintenance, args: "[command]", summary: "this text, or a command's flags", run: runHelp},

		{name: "bench-floor", group: groupMaintenance, summary: "bench's floor process, started by bench", run: runBenchFloor, hidden: true},
	}
}

// lookupCommand finds the command called name, or the subcommand for a
// name of two words ("dlq list").
func lookupCommand(name string) (command, bool) {
	first, sub, isSub := strings.Cut(name, " ")
	for _, c := range commandList() {
		if c.name != first {
			continue
		}
		if !isSub {
			return c, true
		}
		for _, s := range c.subs {
			if s.name == sub {
				return s, true
			}
		}
	}
	return command{}, false
}

const exitCodes = `Exit codes: 0 success (help and version too); 1 error, or (status) command not found, or
(dlq replay) a dead letter not replayed, or (disconnect --wait) not accepted; 2 usage error
(unknown command or flag, stray argument); 3 (disconnect --wait) accepted but unconfirmed.
`

// topUsage is the usage text of callcontrol itself.
func topUsage() string {
	var b strings.Builder
	b.WriteString("usage: callcontrol <command> [flags] [args]\n")
	for _, g := range []commandGroup{groupRoles, groupClient, groupMaintenance} {
		fmt.Fprintf(&b, "\n%s:\n", g)
		for _, c := range commandList() {
			if c.group == g && !c.hidden {
				fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
			}
		}
	}
	b.WriteString("\n" + exitCodes + "\n")
	b.WriteString("Every flag can also be set as CALLCONTROL_<FLAG> (e.g. CALLCONTROL_NATS_URL); the command line wins.\n")
	b.WriteString("Run 'callcontrol <command> -h' (or 'callcontrol help <command>') for its flags.\n")
	return b.String()
}

// runHelp prints the usage text, or with arguments the usage of the
// command they name (help dlq replay = dlq replay -h).
func runHelp(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stdout, topUsage())
		return nil
	}
	return run(ctx, append(args, "-h"), stdout)
}
