package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/pattern"
)

// newEventsCmd returns the events command group.
func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Work with Rewind events and the event patterns of routing rules",
		Long: `Rewind emits an event (a JSON envelope with version, id, source, detail-type, time,
site, resources and detail) for every state change, and routing rules select events with
event patterns written in Amazon EventBridge's pattern language.`,
		Example: `  rewind events test-pattern --pattern rule.json --event event.json`,
		Args:    eventsUsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newEventsTestPatternCmd())
	return cmd
}

func newEventsTestPatternCmd() *cobra.Command {
	const op = "events test-pattern"
	var patternFile, eventFile string
	cmd := &cobra.Command{
		Use:   "test-pattern --pattern FILE --event FILE",
		Short: "Check whether an event matches an event pattern",
		Long: `Test-pattern compiles the event pattern in --pattern, exactly as a routing rule would,
and tests the JSON event in --event against it. It prints "match" and exits 0, or prints
"no match" and exits 1. An invalid pattern (with the JSON path of the offending part), an
invalid event or an unreadable file is reported on standard error with exit status 2.
Either file may be "-" to read standard input.`,
		Example: `  # Does a saved event match a rule's pattern?
  rewind events test-pattern --pattern rule.json --event event.json

  # Try a pattern against an event given on standard input
  echo '{"source": "rewind.backup", "detail": {"state": "FAILED"}}' |
    rewind events test-pattern --pattern rule.json --event -

  # Use the exit status in a script
  if rewind events test-pattern --pattern rule.json --event event.json >/dev/null; then
    echo "the rule would fire"
  fi`,
		Args: eventsUsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if patternFile == "" || eventFile == "" {
				return exitWith(exitUsage, errs.Errorf(op, errs.Invalid, "both --pattern and --event are required").
					WithHint("rewind events test-pattern --pattern rule.json --event event.json"))
			}
			if patternFile == "-" && eventFile == "-" {
				return exitWith(exitUsage, errs.Errorf(op, errs.Invalid, "--pattern and --event cannot both read standard input"))
			}
			src, err := readEventsInput(cmd.InOrStdin(), patternFile)
			if err != nil {
				return exitWith(exitUsage, errs.E(op, errs.Invalid, fmt.Errorf("pattern: %w", err)))
			}
			p, err := pattern.Compile(src)
			if err != nil {
				return exitWith(exitUsage, errs.E(op, errs.Invalid, fmt.Errorf("pattern %s: %w", eventsInputName(patternFile), err)))
			}
			event, err := readEventsInput(cmd.InOrStdin(), eventFile)
			if err != nil {
				return exitWith(exitUsage, errs.E(op, errs.Invalid, fmt.Errorf("event: %w", err)))
			}
			ok, err := p.Match(event)
			if err != nil {
				return exitWith(exitUsage, errs.E(op, errs.Invalid, fmt.Errorf("event %s: %w", eventsInputName(eventFile), err)).
					WithHint("the event must be one JSON object, such as a saved Rewind event envelope"))
			}
			if !ok {
				fmt.Fprintln(cmd.OutOrStdout(), "no match")
				return exitWith(exitFailure, nil)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "match")
			return nil
		},
	}
	cmd.Flags().StringVar(&patternFile, "pattern", "", "event pattern file (JSON), or - for standard input")
	cmd.Flags().StringVar(&eventFile, "event", "", "event file (JSON), or - for standard input")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return exitWith(exitUsage, errs.E(op, errs.Invalid, err))
	})
	return cmd
}

// eventsUsageArgs makes an argument validation failure exit with the usage status, so that it
// cannot be mistaken for a command's own exit status 1.
func eventsUsageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return exitWith(exitUsage, errs.E(cmd.CommandPath(), errs.Invalid, err))
		}
		return nil
	}
}

// readEventsInput reads the named file, or stdin for "-".
func readEventsInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func eventsInputName(name string) string {
	if name == "-" {
		return "(standard input)"
	}
	return name
}
