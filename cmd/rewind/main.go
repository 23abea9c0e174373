// Command rewind is Rewind's one binary: direct vault commands (init, backup, restore, …)
// that need no server, and later the control plane and its client. This package is wiring
// only: flags, construction and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(os.Stderr, ee.err)
		}
		return ee.code
	}
	printError(os.Stderr, err)
	return exitCodeFor(err)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rewind",
		Short:         "Backup and rapid disaster recovery for self-hosted infrastructure",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(commands()...)
	return root
}

// exitError carries an explicit exit code (for commands like grep's: 0 match, 1 no match,
// 2 bad input). A nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitWith returns an error that makes rewind exit with code, printing err if it is not nil.
func exitWith(code int, err error) error { return &exitError{code: code, err: err} }
