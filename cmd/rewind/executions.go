package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/client"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// waitPoll is how often "runbook start --wait" reads the execution.
const waitPoll = 500 * time.Millisecond

func newRunbooksCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "runbooks",
		Short: "List the runbooks of a server",
		Long: `List the runbooks a rewind server can start: name, where it came from (config: the
server's runbooks directory; api: sent with "rewind runbook put"), when it was last
changed, and its Comment. --json prints each with its definition.` + serverHelp,
		Example: `  rewind runbooks --server http://127.0.0.1:8420
  rewind runbooks --json | jq -r '.[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, err := c.Runbooks(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tSOURCE\tUPDATED\tCOMMENT")
			for _, rb := range list {
				var d struct{ Comment string }
				_ = json.Unmarshal(rb.Definition, &d) // a definition without a comment shows "-"
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rb.Name, rb.Source, formatTime(rb.UpdatedAt), dash(shorten(d.Comment, 70)))
			}
			return tw.Flush()
		},
	}
	o.register(cmd, "print the runbooks as JSON")
	return cmd
}

func newExecutionsCmd() *cobra.Command {
	var (
		o                        serverOpts
		status, runbookName, aft string
		limit                    int
	)
	cmd := &cobra.Command{
		Use:   "executions",
		Short: "List the runbook executions of a server",
		Long: `List the runbook executions of a rewind server, newest first: ID, name, runbook,
status, start and stop times and the error of a failed one. With --json the output is one
page: {"items": [...], "next": cursor}; pass next to --after for the following page.` + serverHelp,
		Example: `  rewind executions --server http://127.0.0.1:8420
  rewind executions --status running
  rewind executions --runbook shop-recovery --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			page, err := c.Executions(cmd.Context(), client.ExecutionQuery{Status: status, Runbook: runbookName, Limit: limit, After: aft})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, page)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "ID\tNAME\tRUNBOOK\tSTATUS\tSTARTED\tSTOPPED\tERROR")
			for _, e := range page.Items {
				stopped := "-"
				if e.StoppedAt != nil {
					stopped = formatTime(*e.StoppedAt)
				}
				name := e.Name
				if name == e.ID {
					name = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, name, dash(e.Runbook), e.Status,
					formatTime(e.StartedAt), stopped, dash(shorten(e.Error, 40)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(out, "more executions: --after %s\n", page.Next)
			}
			return nil
		},
	}
	o.register(cmd, `print one page of executions as JSON ({"items", "next"})`)
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only executions with this status: running, succeeded, failed, timed_out, aborted")
	f.StringVar(&runbookName, "runbook", "", "only executions of this runbook")
	f.IntVar(&limit, "limit", 50, "at most this many executions (1 to 1000)")
	f.StringVar(&aft, "after", "", "the page after this cursor (from the previous page)")
	return cmd
}

func newExecutionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "execution",
		Short: "Show, approve, deny or stop one runbook execution",
		Long: `Work with one runbook execution of a rewind server: show its history state by state
and the approvals it waits for, decide an approval (a .waitForTaskToken task) or stop it.` + serverHelp,
		Example: `  rewind execution show 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f7
  rewind execution approve 9c1d… --output '{"approvedBy": "ops"}'
  rewind execution deny 9c1d… --reason "the primary recovered"
  rewind execution stop 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f7`,
	}
	cmd.AddCommand(newExecutionShowCmd(), newExecutionApproveCmd(), newExecutionDenyCmd(), newExecutionStopCmd())
	return cmd
}

func newExecutionShowCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an execution and its history, state by state",
		Long: `Show one runbook execution: its status, input, output or error, the approvals it waits
for (with the commands that decide them) and its history: every recorded transition with
its time, event type, state and error.` + serverHelp,
		Example: `  rewind execution show 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f7
  rewind execution show 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f7 --json | jq '.tokens[] | select(.resolution == null)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			d, err := c.Execution(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return printExecutionDetail(cmd.OutOrStdout(), d)
		},
	}
	o.register(cmd, "print the execution, its history and its tokens as JSON")
	return cmd
}

func newExecutionApproveCmd() *cobra.Command {
	var (
		o      serverOpts
		output string
	)
	cmd := &cobra.Command{
		Use:   "approve TOKEN [--output JSON|@FILE]",
		Short: "Approve what an execution waits for",
		Long: `Approve the .waitForTaskToken task waiting for TOKEN: the task succeeds with --output
as its result ({} by default) and the execution goes on. A token already decided, or whose
task timed out or execution ended, is refused. Needs an operator token.` + serverHelp,
		Example: `  rewind execution approve 9c1d2e3f…
  rewind execution approve 9c1d2e3f… --output '{"approvedBy": "ops", "site": "recovery"}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := readInput("--output", output)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			tk, err := c.Approve(cmd.Context(), args[0], out)
			if err != nil {
				return err
			}
			return printToken(cmd.OutOrStdout(), tk, o.json)
		},
	}
	o.register(cmd, "print the decided token as JSON")
	cmd.Flags().StringVar(&output, "output", "", "the task's result: JSON, or @FILE holding it (default {})")
	return cmd
}

func newExecutionDenyCmd() *cobra.Command {
	var (
		o                 serverOpts
		reason, errorName string
	)
	cmd := &cobra.Command{
		Use:   "deny TOKEN --reason TEXT [--error NAME]",
		Short: "Deny what an execution waits for",
		Long: `Deny the .waitForTaskToken task waiting for TOKEN: the task fails with --error
(Rewind.Denied by default) and --reason as its cause, which the state's Catch can route
(to a "stay on the primary" branch, say). Needs an operator token.` + serverHelp,
		Example: `  rewind execution deny 9c1d2e3f… --reason "the primary recovered; no failover"
  rewind execution deny 9c1d2e3f… --reason "wrong point" --error Drill.WrongPoint`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errs.Errorf("execution deny", errs.Invalid, "--reason is required: it is recorded in the execution's history").
					WithHint(`rewind execution deny TOKEN --reason "the primary recovered"`)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			tk, err := c.Deny(cmd.Context(), args[0], errorName, reason)
			if err != nil {
				return err
			}
			return printToken(cmd.OutOrStdout(), tk, o.json)
		},
	}
	o.register(cmd, "print the decided token as JSON")
	cmd.Flags().StringVar(&reason, "reason", "", "why: the failure's cause, recorded in the history")
	cmd.Flags().StringVar(&errorName, "error", "", "the error name the task fails with (default Rewind.Denied)")
	return cmd
}

func newExecutionStopCmd() *cobra.Command {
	var (
		o      serverOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:   "stop ID [--reason TEXT]",
		Short: "Stop a running execution",
		Long: `Stop a RUNNING runbook execution: it ends ABORTED with --reason as its cause. A task
running a command or a job is told to stop. Needs an operator token.` + serverHelp,
		Example: `  rewind execution stop 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f7 --reason "started by mistake"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			e, err := c.StopExecution(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return printExecution(cmd.OutOrStdout(), e, o.json)
		},
	}
	o.register(cmd, "print the execution as JSON")
	cmd.Flags().StringVar(&reason, "reason", "", "why it was stopped, recorded as the cause")
	return cmd
}

// printExecution writes one execution as JSON or as "field: value" lines.
func printExecution(w io.Writer, e *catalog.Execution, asJSON bool) error {
	if asJSON {
		return writeJSON(w, e)
	}
	tw := newTable(w)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("ID", e.ID)
	if e.Name != e.ID {
		row("Name", e.Name)
	}
	row("Runbook", e.Runbook)
	row("Status", string(e.Status))
	row("Started", formatTime(e.StartedAt))
	if e.StoppedAt != nil {
		row("Stopped", formatTime(*e.StoppedAt))
	}
	if e.Status == catalog.ExecutionRunning {
		row("Server", e.Owner)
	}
	row("Input", compactJSON(e.Input))
	row("Output", compactJSON(e.Output))
	row("Error", e.Error)
	row("Cause", e.Cause)
	return tw.Flush()
}

// printExecutionDetail writes an execution, its open approvals and its history.
func printExecutionDetail(w io.Writer, d *api.ExecutionDetail) error {
	if d.Execution == nil {
		return errs.Errorf("execution show", errs.Internal, "the server sent no execution")
	}
	if err := printExecution(w, d.Execution, false); err != nil {
		return err
	}
	open := openTokens(d)
	if len(open) > 0 {
		fmt.Fprintln(w, "\nWaiting for approval:")
		for _, tk := range open {
			fmt.Fprintf(w, "  state %s since %s, token %s\n", tk.State, formatTime(tk.CreatedAt), tk.Token)
			fmt.Fprintf(w, "    rewind execution approve %s\n    rewind execution deny %s --reason \"…\"\n", tk.Token, tk.Token)
		}
	}
	fmt.Fprintln(w, "\nHistory:")
	tw := newTable(w)
	fmt.Fprintln(tw, "  #\tTIME\tEVENT\tSTATE\tERROR")
	for _, h := range d.History {
		msg := h.Error
		if h.Cause != "" {
			msg = strings.TrimPrefix(msg+": "+h.Cause, ": ")
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", h.Seq, formatTime(h.Time), h.Type, dash(h.State), dash(shorten(msg, 100)))
	}
	return tw.Flush()
}

func openTokens(d *api.ExecutionDetail) []*catalog.TaskToken {
	var open []*catalog.TaskToken
	if d.Execution == nil || d.Status != catalog.ExecutionRunning {
		return nil
	}
	for _, tk := range d.Tokens {
		if tk.Resolution == catalog.TokenUnresolved {
			open = append(open, tk)
		}
	}
	return open
}

// printToken writes a decided task token.
func printToken(w io.Writer, tk *catalog.TaskToken, asJSON bool) error {
	if asJSON {
		return writeJSON(w, tk)
	}
	switch tk.Resolution {
	case catalog.TokenSuccess:
		fmt.Fprintf(w, "approved: execution %s goes on from state %s\n", tk.Execution, tk.State)
	default:
		fmt.Fprintf(w, "denied: state %s of execution %s fails with %s: %s\n", tk.State, tk.Execution, tk.Error, tk.Cause)
	}
	return nil
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	s := strings.Join(strings.Fields(string(raw)), " ")
	return shorten(s, 200)
}

// waitExecution follows an execution until it ends: each history event with a state is
// printed to standard error as it is recorded, an approval it waits for once. The result
// is printed as "runbook run" prints it, and the exit status says how it ended.
func waitExecution(cmd *cobra.Command, c *client.Client, id string, asJSON bool) error {
	ctx := cmd.Context()
	progress := cmd.ErrOrStderr()
	var seen int64
	announced := map[string]bool{}
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		d, err := c.Execution(ctx, id)
		if err != nil {
			return err
		}
		for _, h := range d.History {
			if h.Seq <= seen {
				continue
			}
			seen = h.Seq
			if !asJSON && strings.HasSuffix(h.Type, "StateEntered") {
				fmt.Fprintf(progress, "%s  %s\n", formatTime(h.Time), h.State)
			}
		}
		for _, tk := range openTokens(d) {
			if !announced[tk.Token] && !asJSON {
				fmt.Fprintf(progress, "waiting for approval at %s:\n  rewind execution approve %s\n  rewind execution deny %s --reason \"…\"\n", tk.State, tk.Token, tk.Token)
			}
			announced[tk.Token] = true
		}
		if d.Status.Terminal() {
			return printOutcome(cmd.OutOrStdout(), d.Execution, asJSON)
		}
		select {
		case <-ctx.Done():
			return exitWith(exitInterrupted, errs.Errorf("runbook start --wait", errs.Canceled,
				"stopped waiting; execution %s goes on on the server", id).WithHint("rewind execution show "+id))
		case <-t.C:
		}
	}
}

// printOutcome prints a finished execution (its output, or its error and cause) and
// returns the exit status it calls for: 0 SUCCEEDED, 1 otherwise.
func printOutcome(w io.Writer, e *catalog.Execution, asJSON bool) error {
	if asJSON {
		if err := writeJSON(w, e); err != nil {
			return err
		}
	} else if e.Status == catalog.ExecutionSucceeded {
		b, err := indentJSON(e.Output)
		if err != nil {
			b = e.Output
		}
		fmt.Fprintln(w, string(b))
	} else {
		b, _ := json.MarshalIndent(struct {
			Status string `json:"Status"`
			Error  string `json:"Error"`
			Cause  string `json:"Cause"`
		}{string(e.Status), e.Error, e.Cause}, "", "  ")
		fmt.Fprintln(w, string(b))
	}
	if e.Status != catalog.ExecutionSucceeded {
		return exitWith(exitFailure, nil)
	}
	return nil
}
