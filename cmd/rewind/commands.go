package main

import "github.com/spf13/cobra"

// commands returns every top-level subcommand, in help order.
func commands() []*cobra.Command {
	return []*cobra.Command{
		newInitCmd(),
		newBackupCmd(),
		newPointsCmd(),
		newLsCmd(),
		newRestoreCmd(),
		newCheckCmd(),
		newForgetCmd(),
		newPruneCmd(),
		newCopyCmd(),
		newKeyCmd(),
		newUnlockCmd(),
		newEventsCmd(),
		newRunbookCmd(),
	}
}
