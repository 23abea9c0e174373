package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// parseSubset parses "n/m" for --read-data-subset.
func parseSubset(s string) (n, m int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		n, err = strconv.Atoi(a)
		if err == nil {
			m, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || m < 1 || n < 1 || n > m {
		return 0, 0, errs.Errorf("--read-data-subset", errs.Invalid, "%q is not n/m with 1 ≤ n ≤ m", s).
			WithHint("e.g. --read-data-subset 1/5 reads a fifth of the packs; 1/5 … 5/5 together read them all")
	}
	return n, m, nil
}

func newCheckCmd() *cobra.Command {
	var (
		vo       vaultOpts
		readData bool
		subset   string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the vault's structure and, optionally, every byte of its data",
		Long: `Verify a vault. Without flags, check reads the config, keys, index, every point and
every tree, and confirms that every blob a point needs is indexed in an existing pack of
the right size, and that the WAL of every PostgreSQL resource is continuous from each base
backup (a gap is reported with its LSN range and segment files). --read-data also reads
every pack and authenticates every blob in it;
--read-data-subset n/m reads only the n-th of m groups of packs, so m runs (1/m … m/m)
cover the vault once.

Each problem is printed with the object, the points and the paths it affects; the exit
code is then 13. Check writes nothing (but its own lock).`,
		Example: `  rewind check --vault /srv/vaults/main
  rewind check --vault /srv/vaults/main --read-data
  rewind check --vault /srv/vaults/main --read-data-subset 2/7 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := vault.CheckOptions{ReadData: readData}
			if subset != "" {
				n, m, err := parseSubset(subset)
				if err != nil {
					return err
				}
				opts.ReadData, opts.Subset, opts.Of = true, n, m
			}
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := r.Check(ctx, opts)
			if err != nil {
				return err
			}
			logs, err := logProblems(ctx, r)
			if err != nil {
				return err
			}
			rep.Errors = append(rep.Errors, logs...)
			out := cmd.OutOrStdout()
			if vo.json {
				if err := writeJSON(out, checkJSON(rep)); err != nil {
					return err
				}
			} else {
				printCheckReport(out, rep)
			}
			if !rep.OK() {
				return exitWith(exitCorrupt, fmt.Errorf("check found %d problems", len(rep.Errors)))
			}
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print the report as JSON")
	cmd.Flags().BoolVar(&readData, "read-data", false, "read and authenticate every pack")
	cmd.Flags().StringVar(&subset, "read-data-subset", "", "read only the packs of group n of m (n/m)")
	return cmd
}

type problemJSON struct {
	What   string   `json:"what"`
	Object string   `json:"object"`
	Error  string   `json:"error,omitempty"`
	Blobs  []string `json:"blobs,omitempty"`
	Points []string `json:"points,omitempty"`
	Paths  []string `json:"paths,omitempty"`
}

func toProblemsJSON(ps []vault.Problem) []problemJSON {
	out := make([]problemJSON, 0, len(ps))
	for _, p := range ps {
		pj := problemJSON{What: p.What, Object: p.Object, Error: p.Err, Paths: p.Paths}
		for _, b := range p.Blobs {
			pj.Blobs = append(pj.Blobs, b.String())
		}
		for _, id := range p.Points {
			pj.Points = append(pj.Points, id.String())
		}
		out = append(out, pj)
	}
	return out
}

func checkJSON(rep *vault.CheckReport) map[string]any {
	return map[string]any{
		"ok": rep.OK(), "errors": toProblemsJSON(rep.Errors), "warnings": toProblemsJSON(rep.Warnings),
		"keys": rep.Keys, "index_files": rep.IndexFiles, "packs": rep.Packs, "packs_read": rep.PacksRead,
		"points": rep.Points, "trees": rep.Trees, "blobs_verified": rep.BlobsVerified,
	}
}

func printCheckReport(w io.Writer, rep *vault.CheckReport) {
	fmt.Fprintf(w, "checked %d keys, %d index files, %d packs (%d read), %d points, %d trees, %d blobs verified\n",
		rep.Keys, rep.IndexFiles, rep.Packs, rep.PacksRead, rep.Points, rep.Trees, rep.BlobsVerified)
	for _, p := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	for _, p := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", p)
		for _, id := range p.Points {
			fmt.Fprintf(w, "  affects point %s\n", id.Short())
		}
		for _, path := range p.Paths {
			fmt.Fprintf(w, "  affects %s\n", path)
		}
	}
	if rep.OK() {
		fmt.Fprintln(w, "no errors found")
	}
}
