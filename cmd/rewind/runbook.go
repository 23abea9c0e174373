package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
	"github.com/rewind-dr/rewind/internal/runbook/localtasks"
)

// newRunbookCmd returns "rewind runbook": runbooks are Amazon States Language state machines.
func newRunbookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "Run disaster-recovery runbooks (Amazon States Language state machines)",
		Long: `Runbooks are state machines written in the Amazon States Language (JSON or YAML),
so a Step Functions definition can be ported to Rewind.

Examples:
  rewind runbook run --definition examples/runbooks/hello.asl.yaml`,
	}
	cmd.AddCommand(newRunbookRunCmd())
	return cmd
}

func newRunbookRunCmd() *cobra.Command {
	var defPath, input, inputFile string
	cmd := &cobra.Command{
		Use:   "run --definition FILE [--input JSON | --input-file FILE]",
		Short: "Run a runbook locally, without a server, and print its output",
		Long: `Run a runbook on this machine, without a Rewind server, and print the execution's
output JSON on standard output.

Local tasks: rewind:exec (run a command: Command, Args, Env, Dir, Stdin, TimeoutSeconds),
rewind:http (Method, URL, Headers, Body) and rewind:event (written to standard error,
since there is no server to publish to).

Exit status: 0 when the execution succeeds; 1 when it fails or times out, after printing
{"Error": …, "Cause": …}; 2 when the definition or input is invalid, with every problem
listed; 130 when interrupted.

Examples:
  rewind runbook run --definition examples/runbooks/hello.asl.yaml
  rewind runbook run --definition examples/runbooks/hello.asl.yaml --input '{"name": "ops", "hosts": ["db1", "db2"]}'
  echo '{"name": "ops", "hosts": ["db1"]}' > /tmp/in.json
  rewind runbook run --definition examples/runbooks/hello.asl.yaml --input-file /tmp/in.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			const op = "runbook run"
			if defPath == "" {
				return exitWith(exitUsage, errs.Errorf(op, errs.Invalid, "--definition is required").
					WithHint("rewind runbook run --definition FILE.asl.yaml"))
			}
			if input != "" && inputFile != "" {
				return exitWith(exitUsage, errs.Errorf(op, errs.Invalid, "--input and --input-file are mutually exclusive"))
			}
			src, err := os.ReadFile(defPath)
			if err != nil {
				return exitWith(exitUsage, errs.E(op, errs.Invalid, fmt.Errorf("reading the definition: %w", err)))
			}
			def, err := runbook.Parse(src)
			if err != nil {
				return exitWith(exitUsage, fmt.Errorf("%s: %w", defPath, err))
			}
			def.Name = runbookName(defPath)
			if err := def.Validate(); err != nil {
				return exitWith(exitUsage, fmt.Errorf("%s: %w", defPath, err))
			}
			in := []byte(input)
			if inputFile != "" {
				if in, err = os.ReadFile(inputFile); err != nil {
					return exitWith(exitUsage, errs.E(op, errs.Invalid, fmt.Errorf("reading the input: %w", err)))
				}
			}
			if len(strings.TrimSpace(string(in))) > 0 && !json.Valid(in) {
				return exitWith(exitUsage, errs.Errorf(op, errs.Invalid, "the input is not valid JSON").
					WithHint(`quote it for the shell: --input '{"key": "value"}'`))
			}
			engine := runbook.NewEngine(localtasks.Registry(localtasks.Options{Events: cmd.ErrOrStderr()}), runbook.Options{})
			ctx := cmd.Context()
			x, err := engine.Start(ctx, def, in, "")
			if err != nil {
				return exitWith(exitCodeFor(err), err)
			}
			res, err := x.Wait(ctx)
			if err != nil {
				x.Stop()
				res, _ = x.Wait(cmd.Context())
			}
			return printResult(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&defPath, "definition", "", "runbook definition file (JSON or YAML)")
	cmd.Flags().StringVar(&input, "input", "", "execution input as JSON (default {})")
	cmd.Flags().StringVar(&inputFile, "input-file", "", "file holding the execution input JSON")
	return cmd
}

// runbookName is the definition file's name without directories and extensions.
func runbookName(path string) string {
	base := filepath.Base(path)
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return base
}

func printResult(w io.Writer, res runbook.Result) error {
	if res.Status == runbook.Succeeded {
		out := res.Output
		var pretty strings.Builder
		if b, err := indentJSON(out); err == nil {
			pretty.Write(b)
		} else {
			pretty.Write(out)
		}
		fmt.Fprintln(w, pretty.String())
		return nil
	}
	b, _ := json.MarshalIndent(struct {
		Error string `json:"Error"`
		Cause string `json:"Cause"`
	}{res.Error, res.Cause}, "", "  ")
	fmt.Fprintln(w, string(b))
	if res.Status == runbook.Aborted {
		return exitWith(exitInterrupted, nil)
	}
	return exitWith(exitFailure, nil)
}

func indentJSON(data []byte) ([]byte, error) {
	var v json.RawMessage = data
	return json.MarshalIndent(v, "", "  ")
}
