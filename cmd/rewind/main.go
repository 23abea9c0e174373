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
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
)

// defaultMemoryLimit is the Go runtime's soft memory target when GOMEMLIMIT is not set.
// Backup and restore keep little live data (a few packs and chunks in flight); without a
// target the collector lets the heap grow to twice that before collecting. Above the
// target the collector works harder; it never fails an allocation.
const defaultMemoryLimit = 128 << 20 // bytes

func main() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	code := run(ctx, os.Args[1:])
	stopProfile()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile to $REWIND_CPUPROFILE and a heap profile to
// $REWIND_MEMPROFILE (at exit), for diagnosing speed and memory; see docs/CLI.md.
func startProfile() (stop func()) {
	var stops []func()
	if p := os.Getenv("REWIND_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		} else {
			fmt.Fprintf(os.Stderr, "rewind: REWIND_CPUPROFILE=%s: cannot write a profile there\n", p)
		}
	}
	if p := os.Getenv("REWIND_MEMPROFILE"); p != "" {
		stops = append(stops, func() {
			f, err := os.Create(p)
			if err != nil {
				fmt.Fprintf(os.Stderr, "rewind: REWIND_MEMPROFILE=%s: %v\n", p, err)
				return
			}
			defer f.Close()
			pprof.Lookup("allocs").WriteTo(f, 0)
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
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
	// "rewind --server URL plans": the flag may come before the command. Commands that talk
	// to a server define their own --server, which takes the value; for the others it is
	// a mistake to give one, said loudly rather than ignored.
	root.PersistentFlags().String("server", "", "URL of a rewind server, for the commands that talk to one (env REWIND_SERVER)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if f := cmd.LocalFlags().Lookup("server"); f == nil && root.PersistentFlags().Changed("server") {
			return errs.Errorf(cmd.CommandPath(), errs.Invalid, "--server does not apply to this command").
				WithHint("'" + cmd.CommandPath() + "' works on a vault directly (--vault); leave out --server")
		}
		return nil
	}
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
