package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/errs"
)

func newEventsReplayCmd() *cobra.Command {
	var (
		o              serverOpts
		from, to, rule string
		name           string
	)
	cmd := &cobra.Command{
		Use:   "replay --from T --to T [--rule NAME]",
		Short: "Send archived events through the event rules again",
		Long: `Replay the events a rewind server archived between --from and --to through its event
rules (all of them, or --rule only): every matched target gets a new delivery, marked as
part of the replay, and the events it sends carry a "replay-name" field. Times are RFC 3339
or how long ago (1h, 7d). The server keeps events for events.archive (30 days by default).` + serverHelp,
		Example: `  rewind events replay --from 2026-03-01T00:00:00Z --to 2026-03-01T06:00:00Z
  rewind events replay --from 2h --to 1h --rule failed-backups --name after-outage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errs.Errorf("events replay", errs.Invalid, "--from and --to are required").
					WithHint("rewind events replay --from 2h --to 1h")
			}
			now := time.Now()
			req := api.ReplayRequest{Rule: rule, Name: name}
			var err error
			if req.From, err = parseSince(from, now); err != nil {
				return err
			}
			if req.To, err = parseSince(to, now); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, err := c.ReplayEvents(cmd.Context(), req)
			if err != nil {
				return err
			}
			if o.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replay %s: %d archived events, %d deliveries\n", res.Name, res.Events, res.Deliveries)
			return nil
		},
	}
	o.register(cmd, "print the result as JSON")
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "replay events at or after this time (RFC 3339) or this long ago (2h)")
	f.StringVar(&to, "to", "", "replay events before this time (RFC 3339) or this long ago")
	f.StringVar(&rule, "rule", "", "only this rule (default: every enabled rule)")
	f.StringVar(&name, "name", "", "the replay's name (default: made from the time)")
	return cmd
}

func newEventsDeadLettersCmd() *cobra.Command {
	var (
		o     serverOpts
		rule  string
		limit int
		after string
	)
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List the deliveries that failed for good",
		Long: `List a rewind server's dead letters, newest first: deliveries of rule targets that ran
out of retries (max_attempts or max_age of the target's retry policy) or failed in a way
retrying cannot fix, with the last error. With --json the output is one page:
{"items": [...], "next": cursor}.` + serverHelp,
		Example: `  rewind events dead-letters
  rewind events dead-letters --rule failed-backups --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			page, err := c.DeadLetters(cmd.Context(), rule, limit, after)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, page)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "ID\tRULE\tTARGET\tKIND\tEVENT\tATTEMPTS\tERROR")
			for _, d := range page.Items {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", d.ID, d.Rule, d.Target, d.Kind, d.EventID, d.Attempts, shorten(d.LastError, 120))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(out, "more dead letters: --after %s\n", page.Next)
			}
			return nil
		},
	}
	o.register(cmd, `print one page as JSON ({"items", "next"})`)
	f := cmd.Flags()
	f.StringVar(&rule, "rule", "", "only this rule's dead letters")
	f.IntVar(&limit, "limit", 100, "at most this many (1 to 1000)")
	f.StringVar(&after, "after", "", "the page after this cursor")
	return cmd
}

func newIncidentsCmd() *cobra.Command {
	var (
		o      serverOpts
		status string
		limit  int
		after  string
	)
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "List the incidents event rules opened",
		Long: `List the incidents a rewind server's incident targets opened, newest first: id,
status, severity, rule and title. With --json the output is one page:
{"items": [...], "next": cursor}.` + serverHelp,
		Example: `  rewind incidents --status open
  rewind incidents --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			page, err := c.Incidents(cmd.Context(), status, limit, after)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, page)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tOPENED\tRULE\tTITLE")
			for _, i := range page.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.Status, i.Severity, formatTime(i.OpenedAt), i.Rule, shorten(i.Title, 80))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(out, "more incidents: --after %s\n", page.Next)
			}
			return nil
		},
	}
	o.register(cmd, `print one page as JSON ({"items", "next"})`)
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only open or closed incidents")
	f.IntVar(&limit, "limit", 100, "at most this many (1 to 1000)")
	f.StringVar(&after, "after", "", "the page after this cursor")
	return cmd
}

func newIncidentCmd() *cobra.Command {
	var o serverOpts
	closeCmd := &cobra.Command{
		Use:   "close ID",
		Short: "Close an open incident",
		Long:  `Close an incident an incident target opened. Closing one that is closed already fails.` + serverHelp,
		Example: `  rewind incident close 01JQ3Z8K4TBD0Q6S5N7W2X9Y1A
  rewind incidents --status open --json | jq -r '.items[].id' | xargs -n1 rewind incident close`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			inc, err := c.CloseIncident(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return writeJSON(cmd.OutOrStdout(), inc)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "incident %s closed\n", inc.ID)
			return nil
		},
	}
	o.register(closeCmd, "print the closed incident as JSON")
	cmd := &cobra.Command{Use: "incident", Short: "Act on one incident", Args: cobra.NoArgs,
		Example: `  rewind incident close 01JQ3Z8K4TBD0Q6S5N7W2X9Y1A`}
	cmd.AddCommand(closeCmd)
	return cmd
}
