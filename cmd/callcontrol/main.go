// Command callcontrol releases call connections on a Huawei CC-Gateway from
// disconnect commands on NATS JetStream. One binary, one role per
// subcommand; `callcontrol dev` runs everything in one process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: callcontrol <command> [flags]

commands:
  dev          embedded NATS + gateway simulator + worker + poller, all in one process
  worker       execute disconnect commands from JetStream against the gateway
  poller       long-poll the agents' gateway events, republish them, confirm disconnects
  gatewaysim   run the CC-Gateway simulator
  disconnect   publish one disconnect command (--wait prints its result and confirmation)
  watch        print results and confirmations (--events: agent events) as they arrive
  signin       sign an agent in at the gateway and register its session
  register     register a GUID obtained elsewhere for an agent
  signout      remove an agent's session (and log it out at the gateway)
  agents       the agents: session, poller, current call (ID, phase, masked parties, age)
  dlq          dead letters: list, show <command_id|seq>, replay <command_id|seq>... | --all
  status       a command's ledger state, result, pending and confirmation: status <command_id>
  bench        measure throughput, latency and scale against baselines in the same run
  help         this text

Exit codes: 0 success; 1 error, or (status) command not found, or (dlq replay) a
dead letter not replayed, or (disconnect --wait) not accepted; 2 usage (-h);
3 (disconnect --wait) accepted but unconfirmed.

Every flag can also be set as CALLCONTROL_<FLAG> (e.g. CALLCONTROL_NATS_URL).
Run 'callcontrol <command> -h' for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var exit exitError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		printExitError(os.Stderr, err)
		os.Exit(1)
	}
}

// exitError ends the process with a code and no message (the command has
// already printed what happened).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run executes the subcommand in args until it finishes or ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmds := map[string]func(context.Context, []string, io.Writer) error{
		"dev": runDev, "bench": runBench, "worker": runWorker, "poller": runPoller, "gatewaysim": runGatewaySim,
		"disconnect": runDisconnect, "watch": runWatch,
		"signin": runSignIn, "register": runRegister, "signout": runSignOut, "agents": runAgents,
		"dlq": runDLQ, "status": runStatus, "help": runHelp,
		"bench-floor": runBenchFloor, // bench's child process, not for users
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd(ctx, args[1:], stdout)
}

func runHelp(_ context.Context, _ []string, stdout io.Writer) error {
	fmt.Fprint(stdout, usage)
	return nil
}
