package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/vault"
)

func newPruneCmd() *cobra.Command {
	var (
		vo        vaultOpts
		dryRun    bool
		maxUnused float64
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Free the space of data no recovery point references",
		Long: `Remove data that no recovery point references any more (after forget). Packs wholly
unused are deleted; packs with more than --max-unused of unused bytes are rewritten with
only their used blobs. Prune takes an exclusive lock (it waits for running backups to
finish), reads every point and tree first and stops with nothing deleted on any error, and
is safe to interrupt and run again.`,
		Example: `  rewind prune --vault /srv/vaults/main
  rewind prune --vault /srv/vaults/main --dry-run --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := r.Prune(ctx, vault.PruneOptions{DryRun: dryRun, MaxUnused: maxUnused})
			if err != nil {
				return err
			}
			if vo.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			printPruneReport(cmd.OutOrStdout(), rep, dryRun)
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print the report as JSON")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "show what would be removed; change nothing")
	cmd.Flags().Float64Var(&maxUnused, "max-unused", 0, "rewrite packs with more than this share of unused bytes (0..1; default 0.1)")
	return cmd
}

func printPruneReport(w io.Writer, rep *vault.PruneReport, dryRun bool) {
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	fmt.Fprintf(w, "prune: %d points use %d blobs in %d packs\n", rep.Points, rep.BlobsUsed, rep.PacksTotal)
	fmt.Fprintf(w, "  %s %d unused packs and %d unreferenced packs (%s); repacked %d packs (%d blobs, %s) into %d\n",
		verb, rep.PacksDeleted, rep.PacksUnreferenced, humanBytes(uint64(rep.BytesDeleted)),
		rep.PacksRepacked, rep.BlobsRepacked, humanBytes(uint64(rep.BytesRepacked)), rep.PacksWritten)
	fmt.Fprintf(w, "  index files: %d written, %d deleted\n", rep.IndexFilesWritten, rep.IndexFilesDeleted)
}
