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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode returns the exit status for err, the error that ends the
// process, and prints it to w unless the command has already said what
// happened (an exitError).
func exitCode(err error, w io.Writer) int {
	var (
		exit  exitError
		usage usageError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return int(exit)
	case errors.As(err, &usage):
		printExitError(w, err)
		return 2
	default:
		printExitError(w, err)
		return 1
	}
}

// exitError ends the process with a code and no message (the command has
// already printed what happened).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a command line that cannot be run as given (an unknown
// command or flag, a stray argument): exit status 2, as the shells and
// the flag package's ExitOnError use for usage errors.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run executes the subcommand in args until it finishes or ctx ends. Help
// (-h, --help, help) is printed on stdout and is a success.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage())
		return usageError{errors.New("no command given")}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		args = []string{"help"}
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := lookupCommand(args[0])
	if !ok || cmd.run == nil {
		return usageError{fmt.Errorf("unknown command %q (run 'callcontrol help' for the list)", args[0])}
	}
	if err := cmd.run(ctx, args[1:], stdout); !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}
