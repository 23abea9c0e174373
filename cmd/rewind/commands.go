package main

import "github.com/spf13/cobra"

// commands returns every top-level subcommand, in help order.
func commands() []*cobra.Command {
	events := newEventsCmd()
	events.AddCommand(newServerEventsListCmd())
	events.AddCommand(newEventsReplayCmd())
	events.AddCommand(newEventsDeadLettersCmd())
	cmds := []*cobra.Command{
		newInitCmd(),
		newBackupCmd(),
		newProtectCmd(),
		newPointsCmd(),
		newLsCmd(),
		newRestoreCmd(),
		newCheckCmd(),
		newForgetCmd(),
		newPruneCmd(),
		newCopyCmd(),
		newWalPushCmd(),
		newWalFetchCmd(),
		newKeyCmd(),
		newUnlockCmd(),
		events,
		newRunbookCmd(),
		newRunbooksCmd(),
		newExecutionsCmd(),
		newExecutionCmd(),
		newServerCmd(),
		newAgentCmd(),
		newCatalogCmd(),
	}
	cmds = append(cmds, newAlarmsCmd(), newIncidentsCmd(), newIncidentCmd())
	cmds = append(cmds, newRulesCmd(), newRuleCmd())
	return append(cmds, newServerClientCmds()...)
}
