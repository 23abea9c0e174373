package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

// pointFilter selects points by resource, host and tags.
type pointFilter struct {
	resource string
	host     string
	tags     []string
}

func (pf *pointFilter) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&pf.resource, "resource", "", "only points of this resource")
	f.StringVar(&pf.host, "host", "", "only points taken on this host")
	f.StringArrayVar(&pf.tags, "tag", nil, "only points with this tag key=value (repeatable; all must match)")
}

func (pf *pointFilter) apply(points []*vault.Point) ([]*vault.Point, error) {
	want, err := parseTags(pf.tags)
	if err != nil {
		return nil, err
	}
	var out []*vault.Point
	for _, p := range points {
		if pf.resource != "" && p.Resource != pf.resource {
			continue
		}
		if pf.host != "" && p.Host != pf.host {
			continue
		}
		if !tagsMatch(p.Tags, want) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func newPointsCmd() *cobra.Command {
	var (
		vo     vaultOpts
		pf     pointFilter
		server string
	)
	cmd := &cobra.Command{
		Use:   "points",
		Short: "List recovery points",
		Long: `List the recovery points in a vault, oldest first: ID, time, host, resource, paths,
tags and size. Points whose resource is continuous also show their restorable time range.

For each continuous database resource (PostgreSQL base backups with streamed or archived
WAL, SQLite snapshots with shipped WAL, MySQL/MariaDB backups with shipped binlog) a section
after the table shows the spans of time it can be restored to and, for PostgreSQL and MySQL,
the backup each span starts from, its log positions (LSNs; binlog file:position) and every
gap in the stored log. With --json, the newest point of such a resource carries a
"restorable" object with the same.`,
		Example: `  rewind points --vault /srv/vaults/main
  rewind points --vault /srv/vaults/main --resource shop-files --json
  rewind points --vault /srv/vaults/main --tag app=shop
  rewind points --vault /srv/vaults/main --resource orders-db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if url, ok := serverMode(server, vo.url); ok {
				return serverPoints(cmd, url, vo.json, pf)
			}
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			all, err := r.Points(ctx)
			if err != nil {
				return err
			}
			points, err := pf.apply(all)
			if err != nil {
				return err
			}
			ranges, order, err := restorableRanges(ctx, r, points)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if vo.json {
				newest := map[string]int{}
				for i, p := range points {
					newest[p.Resource] = i
				}
				list := make([]pointListJSON, 0, len(points))
				for i, p := range points {
					pj := pointListJSON{pointJSON: toPointJSON(p)}
					if newest[p.Resource] == i {
						pj.Restorable = ranges[p.Resource]
					}
					list = append(list, pj)
				}
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "ID\tTIME\tHOST\tRESOURCE\tPATHS\tTAGS\tSIZE")
			for _, p := range points {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID.Short(), formatTime(p.Time), p.Host,
					p.Resource, strings.Join(p.Paths, ","), formatTags(p.Tags), humanBytes(p.Summary.Bytes))
				// A database resource's range is shown once, below, rather than per piece.
				if p.Range != nil && ranges[p.Resource] == nil {
					fmt.Fprintf(tw, "\trestorable %s .. %s\t\t\t\t\t\n", formatTime(p.Range.From), formatTime(p.Range.To))
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(out, "%d points\n", len(points))
			printRestorable(out, order, ranges)
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print the points as JSON")
	pf.register(cmd)
	cmd.Flags().StringVar(&server, "server", "", "list the points the server's catalog knows, from every vault (env REWIND_SERVER)")
	return cmd
}

// serverMode reports whether a command that works on a vault or through a server should
// ask the server: --server was given, or REWIND_SERVER is set and no vault is named.
func serverMode(server, vaultFlag string) (string, bool) {
	if server != "" {
		return server, true
	}
	if s := os.Getenv(envServer); s != "" && vaultFlag == "" && os.Getenv("REWIND_VAULT") == "" {
		return s, true
	}
	return "", false
}

// pointListJSON is a point in 'rewind points --json': the point, and on the newest point of
// a continuous database resource the resource's restorable range.
type pointListJSON struct {
	pointJSON
	Restorable *restorableJSON `json:"restorable,omitempty"`
}

// restorableJSON is what a continuous resource can be restored to.
type restorableJSON struct {
	Kind  string     `json:"kind"` // "postgres", "sqlite" or "mysql"
	Spans []spanJSON `json:"spans"`
	Gaps  []gapJSON  `json:"gaps,omitempty"`
	// Error says why the range could not be worked out (e.g. WAL without a base backup).
	Error string `json:"error,omitempty"`
}

type spanJSON struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Base     string    `json:"base,omitempty"`      // PostgreSQL, MySQL: the backup's point ID
	BaseKind string    `json:"base_kind,omitempty"` // MySQL: mysql-dump or mysql-physical
	FromLSN  string    `json:"from_lsn,omitempty"`
	ToLSN    string    `json:"to_lsn,omitempty"`
	Timeline uint32    `json:"timeline,omitempty"`
	// MySQL: the binlog the span covers, FILE:POS (the backup's snapshot) to FILE:POS
	// (where the stored binlog stops, exclusive).
	FromBinlog string `json:"from_binlog,omitempty"`
	ToBinlog   string `json:"to_binlog,omitempty"`
}

// gapJSON is a hole in a resource's stored log: PostgreSQL's fields, or MySQL's.
type gapJSON struct {
	Timeline   uint32   `json:"timeline,omitempty"`
	FromLSN    string   `json:"from_lsn,omitempty"`
	ToLSN      string   `json:"to_lsn,omitempty"`
	Segments   []string `json:"segments,omitempty"`
	FromBinlog string   `json:"from_binlog,omitempty"` // MySQL: stored binlog stops here
	ToBinlog   string   `json:"to_binlog,omitempty"`   // MySQL: and starts again here
	Text       string   `json:"text"`
}

// restorableRanges works out the restorable range of every continuous database resource
// among points, and returns them with the resources in order of first appearance. A
// resource whose range cannot be worked out gets its reason in Error; only errors of the
// vault itself (unreachable, canceled) fail the listing.
func restorableRanges(ctx context.Context, r *vault.Repository, points []*vault.Point) (map[string]*restorableJSON, []string, error) {
	out := map[string]*restorableJSON{}
	var order []string
	for _, p := range points {
		kind := dbKindOf(p.Kind)
		if kind != sourcePostgres && kind != sourceSQLite && kind != sourceMySQL {
			continue
		}
		if _, done := out[p.Resource]; done {
			continue
		}
		rj := &restorableJSON{Kind: kind, Spans: []spanJSON{}}
		var err error
		switch kind {
		case sourceMySQL:
			err = mysqlRanges(ctx, r, p.Resource, rj)
		case sourcePostgres:
			var rep *postgres.Report
			rep, err = postgres.Continuity(ctx, postgres.FromVault(r), p.Resource)
			if err == nil {
				for _, s := range rep.Spans {
					rj.Spans = append(rj.Spans, spanJSON{From: s.From, To: s.To, Base: s.Base.ID.String(),
						FromLSN: s.FromLSN.String(), ToLSN: s.ToLSN.String(), Timeline: s.Timeline})
				}
				for _, g := range rep.Gaps {
					rj.Gaps = append(rj.Gaps, gapJSON{Timeline: g.Timeline, FromLSN: g.From.String(), ToLSN: g.To.String(),
						Segments: g.Segments, Text: g.String()})
				}
			}
		default:
			var spans []vault.TimeRange
			spans, err = sqlite.Range(ctx, sqlite.FromVault(r), p.Resource)
			for _, s := range spans {
				rj.Spans = append(rj.Spans, spanJSON{From: s.From, To: s.To})
			}
		}
		if err != nil {
			if k := errs.KindOf(err); k == errs.Unavailable || k == errs.Canceled || k == errs.Unauthorized {
				return nil, nil, err
			}
			rj.Error = err.Error()
		}
		out[p.Resource] = rj
		order = append(order, p.Resource)
	}
	return out, order, nil
}

// mysqlRanges fills rj with the restorable spans of MySQL resource and the gap after each.
func mysqlRanges(ctx context.Context, r *vault.Repository, resource string, rj *restorableJSON) error {
	spans, err := mysql.Range(ctx, mysql.FromVault(r), resource)
	if err != nil {
		return err
	}
	seen := map[mysql.Gap]bool{}
	for _, s := range spans {
		rj.Spans = append(rj.Spans, spanJSON{From: s.From, To: s.To, Base: s.Base.ID.String(), BaseKind: s.Base.Kind,
			FromBinlog: fmt.Sprintf("%s:%d", s.StartFile, s.StartPos), ToBinlog: fmt.Sprintf("%s:%d", s.EndFile, s.EndPos)})
		// Backups inside one stretch of binlog share the gap after it: list it once.
		if g := s.Gap; g != nil && !seen[*g] {
			seen[*g] = true
			rj.Gaps = append(rj.Gaps, gapJSON{FromBinlog: fmt.Sprintf("%s:%d", g.File, g.Pos),
				ToBinlog: fmt.Sprintf("%s:%d", g.NextFile, g.NextPos), Text: g.String()})
		}
	}
	return nil
}

// printRestorable prints the restorable ranges after the point table.
func printRestorable(w io.Writer, order []string, ranges map[string]*restorableJSON) {
	if len(order) == 0 {
		return
	}
	fmt.Fprintln(w, "\nrestorable:")
	for _, res := range order {
		rj := ranges[res]
		fmt.Fprintf(w, "  %s (%s)\n", res, rj.Kind)
		if rj.Error != "" {
			fmt.Fprintf(w, "    cannot tell: %s\n", rj.Error)
		}
		for _, s := range rj.Spans {
			line := fmt.Sprintf("    %s .. %s", formatTime(s.From), formatTime(s.To))
			switch {
			case s.FromBinlog != "":
				line += fmt.Sprintf("  binlog %s .. %s, from %s %s", s.FromBinlog, s.ToBinlog, s.BaseKind, s.Base[:8])
			case s.Base != "":
				line += fmt.Sprintf("  LSN %s .. %s, timeline %d, from base backup %s", s.FromLSN, s.ToLSN, s.Timeline, s.Base[:8])
			}
			fmt.Fprintln(w, line)
		}
		for _, g := range rj.Gaps {
			fmt.Fprintf(w, "    gap: %s\n", g.Text)
		}
	}
}
