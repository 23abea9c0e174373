package main

import "github.com/spf13/cobra"

// commands returns every top-level subcommand, in help order.
func commands() []*cobra.Command {
	events := newEventsCmd()
	events.AddCommand(newServerEventsListCmd())
	cmds := []*cobra.Command{
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
		events,
		newRunbookCmd(),
		newServerCmd(),
		newAgentCmd(),
		newCatalogCmd(),
	}
	return append(cmds, newServerClientCmds()...)
}
