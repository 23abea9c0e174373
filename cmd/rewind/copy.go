package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newCopyCmd() *cobra.Command {
	var (
		vo     vaultOpts
		pf     pointFilter
		to     string
		toFile string
	)
	cmd := &cobra.Command{
		Use:   "copy --to URL [flags] [POINT...]",
		Short: "Copy recovery points into another vault (a second site)",
		Long: `Copy recovery points (all, those named, or those the filters select) from --vault into
the vault at --to, which has its own password (REWIND_TO_PASSWORD, REWIND_TO_PASSWORD_FILE
or --to-password-file) and, on S3, its own credentials (REWIND_TO_AWS_ACCESS_KEY_ID,
REWIND_TO_AWS_SECRET_ACCESS_KEY). Only data the destination lacks is transferred; it is
re-encrypted under the destination's keys, so the copy can be restored with the
destination's key alone. Points already copied are skipped. Create the destination first
with 'rewind init'.`,
		Example: `  REWIND_TO_PASSWORD_FILE=/etc/rewind/offsite.key rewind copy --vault /srv/vaults/main --to s3://s3.offsite:9000/backups/main
  rewind copy --vault /srv/vaults/main --to /mnt/usb/vault --resource shop-files
  rewind copy --vault /srv/vaults/main --to /mnt/usb/vault 3fa9c2e1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if to == "" {
				return errs.Errorf("copy", errs.Invalid, "--to is required").WithHint("give the destination vault, e.g. --to s3://host:9000/bucket/prefix")
			}
			toPW, err := passwordSource{file: toFile, envVar: "REWIND_TO_PASSWORD", fileVar: "REWIND_TO_PASSWORD_FILE", prompt: "destination vault password"}.read(false)
			if err != nil {
				return err
			}
			src, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer src.Close()
			dbe, err := openBackend(ctx, to, destCreds())
			if err != nil {
				return err
			}
			dst, err := vault.Open(ctx, dbe, toPW, vault.OpenOptions{Host: hostname()})
			if err != nil {
				dbe.Close()
				if errs.Is(err, errs.NotFound) {
					return errs.E("copy", errs.NotFound, fmt.Errorf("destination: %w", err)).
						WithHint("create the destination first: rewind init --vault " + to)
				}
				return errs.E("copy", errs.KindOf(err), fmt.Errorf("destination: %w", err))
			}
			defer dst.Close()

			var points []*vault.Point
			if len(args) > 0 {
				for _, ref := range args {
					p, err := src.FindPoint(ctx, ref, "")
					if err != nil {
						return err
					}
					points = append(points, p)
				}
			} else {
				all, err := src.Points(ctx)
				if err != nil {
					return err
				}
				if points, err = pf.apply(all); err != nil {
					return err
				}
			}
			rep, err := vault.Copy(ctx, src, dst, points, nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if vo.json {
				list := make([]map[string]any, 0, len(rep.Points))
				for _, cp := range rep.Points {
					list = append(list, map[string]any{"source": cp.Src.String(), "copy": cp.Dst.String(), "skipped": cp.Skipped})
				}
				return writeJSON(out, map[string]any{
					"points": list, "points_copied": rep.PointsCopied, "points_skipped": rep.PointsSkipped,
					"blobs_copied": rep.BlobsCopied, "bytes_copied": rep.BytesCopied,
				})
			}
			for _, cp := range rep.Points {
				if cp.Skipped {
					fmt.Fprintf(out, "point %s: already in the destination as %s\n", cp.Src.Short(), cp.Dst.Short())
				} else {
					fmt.Fprintf(out, "point %s: copied as %s\n", cp.Src.Short(), cp.Dst.Short())
				}
			}
			fmt.Fprintf(out, "copied %d points (%d already there), %d blobs, %s\n",
				rep.PointsCopied, rep.PointsSkipped, rep.BlobsCopied, humanBytes(rep.BytesCopied))
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print the result as JSON")
	pf.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "destination vault location")
	cmd.Flags().StringVar(&toFile, "to-password-file", "", "read the destination password from this file")
	return cmd
}
