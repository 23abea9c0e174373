package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/plan"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newForgetCmd() *cobra.Command {
	var (
		vo        vaultOpts
		pf        pointFilter
		ret       plan.Retention
		within    string
		after     string
		doPrune   bool
		dryRun    bool
		pointRefs []string
	)
	cmd := &cobra.Command{
		Use:   "forget [flags] [POINT...]",
		Short: "Remove recovery points by a retention policy (or by ID)",
		Long: `Remove recovery points from a vault, either those named on the command line or those a
retention policy does not keep. The policy is applied separately to each resource (and
host): the newest point of each hour/day/week/month/year bucket is kept, counting from the
newest point, plus the --keep-last newest and everything within --keep-within. With
--delete-after, points older than that are removed even if a keep rule would keep them.

Forget removes only the point manifests; the data they alone referenced is freed by prune
(--prune runs it right after). --dry-run shows what would be removed and changes nothing.`,
		Example: `  rewind forget --vault /srv/vaults/main --keep-last 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  rewind forget --vault /srv/vaults/main --resource shop-files --keep-within 30d --prune
  rewind forget --vault /srv/vaults/main 3fa9c2e1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pointRefs = args
			var err error
			if within != "" {
				if ret.KeepWithin, err = plan.ParseDuration(within); err != nil {
					return err
				}
			}
			if after != "" {
				if ret.DeleteAfter, err = plan.ParseDuration(after); err != nil {
					return err
				}
			}
			if len(pointRefs) == 0 {
				if err := ret.Validate(); err != nil {
					return err
				}
			} else if !ret.IsZero() {
				return errs.Errorf("forget", errs.Invalid, "give either point IDs or a retention policy, not both")
			}

			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			var lock *vault.Lock
			if !dryRun {
				if lock, err = r.Lock(ctx, true); err != nil {
					return err
				}
				defer func() {
					if lock != nil {
						lock.Unlock(ctx)
					}
				}()
			}

			var remove []*vault.Point
			var decisions []forgetDecision
			if len(pointRefs) > 0 {
				for _, ref := range pointRefs {
					p, err := r.FindPoint(ctx, ref, "")
					if err != nil {
						return err
					}
					remove = append(remove, p)
					decisions = append(decisions, forgetDecision{Point: p, Keep: false, Reasons: []string{"named"}})
				}
			} else {
				all, err := r.Points(ctx)
				if err != nil {
					return err
				}
				points, err := pf.apply(all)
				if err != nil {
					return err
				}
				decisions = applyRetention(points, ret, time.Now())
				for _, d := range decisions {
					if !d.Keep {
						remove = append(remove, d.Point)
					}
				}
			}
			out := cmd.OutOrStdout()
			if !vo.json {
				printDecisions(out, decisions, dryRun)
			}
			removed := 0
			if !dryRun {
				for _, p := range remove {
					if err := r.DeletePoint(ctx, p.ID); err != nil {
						return fmt.Errorf("removing point %s (%d of %d removed so far): %w", p.ID.Short(), removed, len(remove), err)
					}
					removed++
				}
			}
			var pr *vault.PruneReport
			if doPrune && !dryRun && removed > 0 {
				// Prune takes its own exclusive lock.
				if err := lock.Unlock(ctx); err != nil {
					return err
				}
				lock = nil
				if pr, err = r.Prune(ctx, vault.PruneOptions{}); err != nil {
					return err
				}
			}
			if vo.json {
				list := make([]map[string]any, 0, len(decisions))
				for _, d := range decisions {
					list = append(list, map[string]any{"point": toPointJSON(d.Point), "keep": d.Keep, "reasons": d.Reasons})
				}
				res := map[string]any{"dry_run": dryRun, "removed": removed, "decisions": list}
				if pr != nil {
					res["prune"] = pr
				}
				return writeJSON(out, res)
			}
			if dryRun {
				fmt.Fprintf(out, "would remove %d points (dry run: nothing changed)\n", len(remove))
			} else {
				fmt.Fprintf(out, "removed %d points\n", removed)
			}
			if pr != nil {
				printPruneReport(out, pr, false)
			}
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print the decisions as JSON")
	pf.register(cmd)
	f := cmd.Flags()
	f.IntVar(&ret.KeepLast, "keep-last", 0, "keep the n newest points")
	f.IntVar(&ret.KeepHourly, "keep-hourly", 0, "keep the newest point of each of the last n hours that have points")
	f.IntVar(&ret.KeepDaily, "keep-daily", 0, "keep the newest point of each of the last n days that have points")
	f.IntVar(&ret.KeepWeekly, "keep-weekly", 0, "keep the newest point of each of the last n ISO weeks that have points")
	f.IntVar(&ret.KeepMonthly, "keep-monthly", 0, "keep the newest point of each of the last n months that have points")
	f.IntVar(&ret.KeepYearly, "keep-yearly", 0, "keep the newest point of each of the last n years that have points")
	f.StringVar(&within, "keep-within", "", "keep every point newer than this (e.g. 30d, 12h)")
	f.StringArrayVar(&ret.KeepTags, "keep-tag", nil, "keep every point with this tag key=value (repeatable)")
	f.StringVar(&after, "delete-after", "", "remove points older than this, whatever the keep rules say (e.g. 35d)")
	f.BoolVar(&doPrune, "prune", false, "run prune after removing points")
	f.BoolVarP(&dryRun, "dry-run", "n", false, "show what would be removed; change nothing")
	return cmd
}

type forgetDecision struct {
	Point   *vault.Point
	Keep    bool
	Reasons []string
}

// applyRetention applies r separately to each (resource, host) group.
func applyRetention(points []*vault.Point, r plan.Retention, now time.Time) []forgetDecision {
	groups := map[string][]*vault.Point{}
	var order []string
	for _, p := range points {
		k := p.Resource + "\x00" + p.Host
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	sort.Strings(order)
	var out []forgetDecision
	for _, k := range order {
		byID := map[string]*vault.Point{}
		var cands []plan.Candidate
		for _, p := range groups[k] {
			byID[p.ID.String()] = p
			cands = append(cands, plan.Candidate{ID: p.ID.String(), Time: p.Time, Tags: p.Tags})
		}
		for _, d := range plan.Apply(cands, r, now, time.Local) {
			out = append(out, forgetDecision{Point: byID[d.ID], Keep: d.Keep, Reasons: d.Reasons})
		}
	}
	return out
}

func printDecisions(w io.Writer, ds []forgetDecision, dryRun bool) {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tTIME\tHOST\tRESOURCE\tACTION\tREASONS")
	for _, d := range ds {
		action := "keep"
		if !d.Keep {
			action = "remove"
			if dryRun {
				action = "would remove"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Point.ID.Short(), formatTime(d.Point.Time), d.Point.Host,
			d.Point.Resource, action, strings.Join(d.Reasons, "; "))
	}
	tw.Flush()
}
