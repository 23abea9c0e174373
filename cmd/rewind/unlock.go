package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newUnlockCmd() *cobra.Command {
	var (
		vo          vaultOpts
		removeStale bool
	)
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "List the vault's locks, or remove stale ones",
		Long: `List the locks held on a vault (by running backups, prunes, checks). A lock is stale
when its holder stopped refreshing it for longer than its lease, or when it was taken on
this host by a process that no longer exists; stale locks never block anything, and
--remove-stale deletes them. A lock that is not stale is never removed.`,
		Example: `  rewind unlock --vault /srv/vaults/main
  rewind unlock --vault /srv/vaults/main --remove-stale`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			out := cmd.OutOrStdout()
			if removeStale {
				removed, err := r.Unlock(ctx, true)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "removed %d stale locks\n", len(removed))
				return nil
			}
			locks, err := r.Locks(ctx)
			if err != nil {
				return err
			}
			if vo.json {
				return writeJSON(out, locks)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "LOCK\tKIND\tHOST\tPID\tREFRESHED\tSTALE")
			for _, l := range locks {
				kind := "shared"
				if l.Exclusive {
					kind = "exclusive"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s ago\t%v\n", l.Name[:12], kind, l.Host, l.PID,
					time.Since(l.Refreshed).Round(time.Second), l.Stale)
			}
			return tw.Flush()
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print the locks as JSON")
	cmd.Flags().BoolVar(&removeStale, "remove-stale", false, "remove stale locks")
	return cmd
}
