package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
)

func newRestoreCmd() *cobra.Command {
	var (
		vo       vaultOpts
		target   string
		includes []string
		resource string
		workers  int
		server   string
		vaultArg string
		pointArg string
	)
	cmd := &cobra.Command{
		Use:   "restore [flags] [POINT]",
		Short: "Restore a recovery point into a directory",
		Long: `Restore a recovery point into --target.

POINT is "latest" (with --resource: that resource's latest point), a point ID or a unique
prefix of one. A point of one backed-up directory restores that directory's contents into
the target; several paths restore side by side under it. Existing files in the target are
replaced and existing directories merged; nothing is ever written outside the target, and
symlinks found in the target are replaced, never followed.

Files whose data cannot be read back (a damaged or missing pack) are reported and the rest
is restored; the exit code is then 13.`,
		Example: `  rewind restore --vault /srv/vaults/main latest --target /tmp/r
  rewind restore --vault /srv/vaults/main latest --resource shop-files --target /srv/shop --include 'data/**'
  rewind restore --vault /srv/vaults/main 3fa9c2e1 --target /tmp/r --include '*.conf'
  rewind --server http://127.0.0.1:8080 restore --resource app-files --point latest --target /srv/restore/app`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if target == "" {
				return errs.Errorf("restore", errs.Invalid, "--target is required").WithHint("give the directory to restore into, e.g. --target /tmp/r")
			}
			ref := pointArg
			if len(args) == 1 {
				if ref != "" && ref != args[0] {
					return errs.Errorf("restore", errs.Invalid, "point given twice: %q and --point %q", args[0], ref)
				}
				ref = args[0]
			}
			if url, ok := serverMode(server, vo.url); ok {
				// The server runs a restore job (on the resource's host) and reports it.
				if ref == "" {
					ref = "latest"
				}
				return serverRestore(cmd, url, vo.json, resource, ref, vaultArg, target)
			}
			if ref == "" {
				return errs.Errorf("restore", errs.Invalid, "which point? give POINT (latest, an ID or a prefix)")
			}
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.FindPoint(ctx, ref, resource)
			if err != nil {
				return err
			}
			start := time.Now()
			prog := newProgress("restore", vo.json)
			if workers <= 0 {
				// Reads of the vault and writes of the target wait on storage, so keep more
				// of them in flight than there are cores.
				workers = max(8, 2*runtime.NumCPU())
			}
			res, err := files.Restore(ctx, files.FromVault(r), p.Root, target, files.RestoreOptions{
				Include: includes, Workers: workers, Progress: prog.update,
			})
			prog.done()
			if res != nil {
				for _, w := range res.Warnings {
					fmt.Fprintf(os.Stderr, "warning: %s\n", w)
				}
				for _, f := range res.Failed {
					fmt.Fprintf(os.Stderr, "failed: %s\n", f)
				}
				took := time.Since(start)
				out := cmd.OutOrStdout()
				if vo.json {
					if jerr := writeJSONLine(out, map[string]any{
						"message_type": "summary", "point": p.ID.String(), "target": target,
						"files": res.Files, "dirs": res.Dirs, "others": res.Others, "bytes": res.Bytes,
						"failed": nonNil(res.Failed), "warnings": len(res.Warnings), "seconds": took.Seconds(),
					}); jerr != nil {
						return jerr
					}
				} else {
					fmt.Fprintf(out, "restored point %s to %s: %d files, %d dirs, %d other, %s in %s\n",
						p.ID.Short(), target, res.Files, res.Dirs, res.Others, humanBytes(res.Bytes), took.Round(time.Millisecond))
				}
			}
			if err != nil {
				return err
			}
			if len(res.Warnings) > 0 {
				return exitWith(exitPartial, fmt.Errorf("restore completed with %d warnings", len(res.Warnings)))
			}
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print progress and the summary as JSON lines")
	f := cmd.Flags()
	f.StringVarP(&target, "target", "t", "", "directory to restore into (created if missing)")
	f.StringArrayVar(&includes, "include", nil, "restore only paths matching this pattern (repeatable)")
	f.StringVar(&resource, "resource", "", "with latest: the resource whose latest point to restore")
	f.StringVar(&server, "server", "", "ask this server to run the restore as a job (env REWIND_SERVER)")
	f.StringVar(&vaultArg, "from-vault", "", "with --server: the configured vault to restore from (default: the point's)")
	f.StringVar(&pointArg, "point", "", "the point (same as the POINT argument)")
	f.IntVar(&workers, "workers", 0, "blobs read and written in parallel (default: twice the CPUs, at least 8)")
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
