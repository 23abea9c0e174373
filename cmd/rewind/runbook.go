package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/orchestrate"
	"github.com/rewind-dr/rewind/internal/orchestrate/servertasks"
	"github.com/rewind-dr/rewind/internal/orchestrate/signaltasks"
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

On a server, runbooks are the *.asl.json, *.asl.yaml and *.asl.yml files of its runbooks
directory (or sent with "runbook put"); "runbook start" runs one there durably, and
"rewind executions" and "rewind execution" follow and decide its executions.

Examples:
  rewind runbook run --definition examples/runbooks/hello.asl.yaml
  rewind runbook start shop-recovery --server http://127.0.0.1:8420 --input '{"resource": "orders-db"}' --wait
  rewind runbook put drill --definition drill.asl.yaml --server http://127.0.0.1:8420`,
	}
	cmd.AddCommand(newRunbookRunCmd(), newRunbookStartCmd(), newRunbookPutCmd())
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

// runbookSuffixes are the file name endings of runbook definitions in a runbooks
// directory; the runbook is named by the file name without it.
var runbookSuffixes = []string{".asl.json", ".asl.yaml", ".asl.yml"}

// runbookNameRE is the API's rule for runbook names, applied to the file names.
var runbookNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// serverRegistry is the task registry of the server's runbooks: the local tasks
// (rewind:exec, rewind:http), the job tasks (rewind:backup, rewind:restore, rewind:copy,
// rewind:check) submitting through the control service, and rewind:event (into the
// outbox, replacing the local one), rewind:notify and rewind:wait-healthy.
func serverRegistry(store catalog.Store, submit func(context.Context, control.Request) (*catalog.Job, error), site string) runbook.Registry {
	reg := localtasks.Registry(localtasks.Options{Events: io.Discard})
	servertasks.Register(reg, servertasks.Deps{Store: store, Submit: submit})
	signaltasks.Register(reg, signaltasks.Deps{Store: store, Site: site})
	return reg
}

// loadRunbookDir reads the runbook definitions of dir (name -> source) and validates each
// against reg, listing every problem of every file. A missing directory holds no runbooks
// unless it was named explicitly.
func loadRunbookDir(dir string, explicit bool, reg runbook.Registry) (map[string][]byte, error) {
	const op = "server --runbooks"
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("reading the runbooks directory: %w", err)).
			WithHint("create it, or point --runbooks at the directory of *.asl.yaml files")
	}
	defs := map[string][]byte{}
	var problems []string
	for _, e := range entries {
		name, ok := "", false
		for _, suf := range runbookSuffixes {
			if n, cut := strings.CutSuffix(e.Name(), suf); cut {
				name, ok = n, true
			}
		}
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if !runbookNameRE.MatchString(name) {
			problems = append(problems, fmt.Sprintf("%s: %q is not a valid runbook name (1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit)", path, name))
			continue
		}
		if _, dup := defs[name]; dup {
			problems = append(problems, fmt.Sprintf("%s: runbook %s is defined by more than one file", path, name))
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		if err := validateRunbook(name, src, reg); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		defs[name] = src
	}
	if len(problems) > 0 {
		return nil, errs.Errorf(op, errs.Invalid, "%d invalid runbook definition(s) in %s:\n  %s", len(problems), dir, strings.Join(problems, "\n  ")).
			WithHint("fix or remove the files; 'rewind runbook run --definition FILE' shows the same errors locally")
	}
	return defs, nil
}

// validateRunbook checks a definition as the server will run it: it parses, it
// validates (every problem listed) and each task resource is in reg.
func validateRunbook(name string, src []byte, reg runbook.Registry) error {
	norm, err := orchestrate.Normalize(src)
	if err != nil {
		return err
	}
	def, err := runbook.Parse(norm)
	if err != nil {
		return err
	}
	def.Name = name
	if err := def.Validate(); err != nil {
		return err
	}
	var missing []string
	for _, r := range def.Resources() {
		if spec, ok := reg[r]; !ok || spec.Run == nil {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return errs.Errorf("runbook", errs.Invalid, "unknown task resource(s): %s (a server has %s)",
			strings.Join(missing, ", "), strings.Join(sortedKeys(reg), ", "))
	}
	return nil
}

// openRunbooks builds the server's execution service: it reads and validates the runbooks
// directory, starts the service and makes the catalog's config runbooks those of the
// directory. Executions left RUNNING are resumed by Run (Resume) and the service's loop.
func openRunbooks(ctx context.Context, s *Server) (*orchestrate.Service, error) {
	dir, explicit := s.opts.Runbooks, s.opts.Runbooks != ""
	if !explicit {
		dir = filepath.Join(filepath.Dir(s.opts.ConfigPath), "runbooks")
	}
	reg := serverRegistry(s.store, s.svc.Submit, s.opts.Site)
	defs, err := loadRunbookDir(dir, explicit, reg)
	if err != nil {
		return nil, err
	}
	// The owner names this server among those sharing the catalog; the same server
	// restarted takes its executions back at once rather than after their lease.
	svc, err := orchestrate.New(orchestrate.Options{Store: s.store, Registry: reg, Owner: hostname() + "/" + s.opts.Listen, Site: s.opts.Site,
		Log: s.log})
	if err != nil {
		return nil, err
	}
	if err := svc.SyncRunbooks(ctx, defs); err != nil {
		svc.Close()
		return nil, err
	}
	s.log.Info("runbooks", "dir", dir, "count", len(defs))
	return svc, nil
}

// readInput reads --input: JSON, or @FILE for a file holding it; empty is {}.
func readInput(flag, v string) (json.RawMessage, error) {
	data := []byte(v)
	if file, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, errs.E(flag, errs.Invalid, fmt.Errorf("reading %s: %w", file, err))
		}
		data = b
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	if !json.Valid(data) {
		return nil, errs.Errorf(flag, errs.Invalid, "%s is not valid JSON", flag).
			WithHint(`quote it for the shell: ` + flag + ` '{"resource": "orders-db"}', or pass ` + flag + ` @input.json`)
	}
	return data, nil
}

func newRunbookStartCmd() *cobra.Command {
	var (
		o           serverOpts
		input, name string
		wait        bool
	)
	cmd := &cobra.Command{
		Use:   "start NAME [--input JSON|@FILE] [--name N] [--wait]",
		Short: "Start an execution of a server's runbook",
		Long: `Start an execution of runbook NAME on a rewind server and print it. The execution is
durable: the server records every transition, and a server restarted mid-execution
resumes it. Needs an operator token.

With --wait the command follows the execution, printing each state as it is entered, and
ends with the execution: exit status 0 when it SUCCEEDED (its output printed), 1 when it
FAILED, TIMED_OUT or was ABORTED ({"Error", "Cause"} printed). An approval it waits for is
shown with the commands that decide it.` + serverHelp,
		Example: `  rewind runbook start shop-recovery --input '{"resource": "orders-db"}'
  rewind runbook start shop-recovery --input @incident.json --name drill-2026-03 --wait
  rewind runbook start shop-recovery --json | jq -r .id`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := readInput("--input", input)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			e, err := c.StartExecution(cmd.Context(), args[0], api.StartExecution{Input: in, Name: name})
			if err != nil {
				return err
			}
			if !wait {
				return printExecution(cmd.OutOrStdout(), e, o.json)
			}
			if !o.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "execution %s (%s) started\n", e.ID, e.Name)
			}
			return waitExecution(cmd, c, e.ID, o.json)
		},
	}
	o.register(cmd, "print the execution as JSON")
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "execution input: JSON, or @FILE holding it (default {})")
	f.StringVar(&name, "name", "", "the execution's name (default its ID)")
	f.BoolVar(&wait, "wait", false, "follow the execution until it ends; the exit status tells how it ended")
	return cmd
}

func newRunbookPutCmd() *cobra.Command {
	var (
		o       serverOpts
		defPath string
	)
	cmd := &cobra.Command{
		Use:   "put NAME --definition FILE",
		Short: "Create or replace a runbook on a server",
		Long: `Send a runbook definition (JSON or YAML; YAML is sent as JSON) to a rewind server as
runbook NAME. The server validates it against its task resources and lists every problem.
A runbook of the server's runbooks directory cannot be replaced this way: edit its file.
Needs an admin token.` + serverHelp,
		Example: `  rewind runbook put drill --definition drill.asl.yaml
  rewind runbook put drill --definition drill.asl.json --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if defPath == "" {
				return errs.Errorf("runbook put", errs.Invalid, "--definition is required")
			}
			src, err := os.ReadFile(defPath)
			if err != nil {
				return errs.E("runbook put", errs.Invalid, fmt.Errorf("reading the definition: %w", err))
			}
			norm, err := orchestrate.Normalize(src)
			if err != nil {
				return fmt.Errorf("%s: %w", defPath, err)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			rb, err := c.PutRunbook(cmd.Context(), args[0], norm)
			if err != nil {
				return err
			}
			if o.json {
				return writeJSON(cmd.OutOrStdout(), rb)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "runbook %s stored (%s)\n", rb.Name, formatTime(rb.UpdatedAt))
			return nil
		},
	}
	o.register(cmd, "print the stored runbook as JSON")
	cmd.Flags().StringVar(&defPath, "definition", "", "runbook definition file (JSON or YAML)")
	return cmd
}
