package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
tags and size. Points whose resource is continuous also show their restorable time range.`,
		Example: `  rewind points --vault /srv/vaults/main
  rewind points --vault /srv/vaults/main --resource shop-files --json
  rewind points --vault /srv/vaults/main --tag app=shop`,
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
			out := cmd.OutOrStdout()
			if vo.json {
				list := make([]pointJSON, 0, len(points))
				for _, p := range points {
					list = append(list, toPointJSON(p))
				}
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "ID\tTIME\tHOST\tRESOURCE\tPATHS\tTAGS\tSIZE")
			for _, p := range points {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID.Short(), formatTime(p.Time), p.Host,
					p.Resource, strings.Join(p.Paths, ","), formatTags(p.Tags), humanBytes(p.Summary.Bytes))
				if p.Range != nil {
					fmt.Fprintf(tw, "\trestorable %s .. %s\t\t\t\t\t\n", formatTime(p.Range.From), formatTime(p.Range.To))
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(out, "%d points\n", len(points))
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
