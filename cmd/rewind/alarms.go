package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAlarmsCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "alarms",
		Short: "Show the state of a rewind server's alarms",
		Long: `Show every alarm the server evaluates, by name: its state (OK, ALARM or
INSUFFICIENT_DATA), the reason of its last change and since when. With --json the output
is the JSON array GET /v1/alarms answers.` + serverHelp,
		Example: `  rewind alarms --server http://127.0.0.1:8420
  rewind alarms --json | jq -r '.[] | select(.state == "ALARM") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, err := c.Alarms(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tSTATE\tSINCE\tREASON")
			for _, a := range list {
				since := "-"
				if !a.Since.IsZero() {
					since = formatTime(a.Since)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.State, since, dash(shorten(a.Reason, 100)))
			}
			return tw.Flush()
		},
	}
	o.register(cmd, "print the alarms as JSON")
	return cmd
}
