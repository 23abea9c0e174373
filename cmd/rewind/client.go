package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/client"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// Environment variables of the server client commands.
const (
	envServer = "REWIND_SERVER" // the server URL when --server is not given
	envToken  = "REWIND_TOKEN"  // the API token sent as a bearer token
)

// newServerClientCmds returns the commands that talk to a running rewind server: plans,
// resources, vaults and jobs (list, show, start, cancel).
func newServerClientCmds() []*cobra.Command {
	return []*cobra.Command{newPlansCmd(), newResourcesCmd(), newVaultsCmd(), newJobsCmd()}
}

// serverOpts are the flags every server client command takes.
type serverOpts struct {
	url  string
	json bool
}

func (o *serverOpts) register(cmd *cobra.Command, jsonUsage string) {
	cmd.Flags().StringVar(&o.url, "server", "", "URL of the rewind server (default $"+envServer+")")
	cmd.Flags().BoolVar(&o.json, "json", false, jsonUsage)
}

// newServerClient returns a client for the server at url (or $REWIND_SERVER) sending
// $REWIND_TOKEN.
func newServerClient(url string) (*client.Client, error) {
	if url == "" {
		url = os.Getenv(envServer)
	}
	if url == "" {
		return nil, errs.Errorf("--server", errs.Invalid, "no server given").
			WithHint("pass --server http://127.0.0.1:8420 or set " + envServer)
	}
	return client.New(url, os.Getenv(envToken), nil)
}

func (o *serverOpts) client() (*client.Client, error) { return newServerClient(o.url) }

const serverHelp = `

The server is --server or $REWIND_SERVER; the token, when the server requires one, is
$REWIND_TOKEN.`

func newPlansCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "plans",
		Short: "List the server's backup plans and when each rule runs next",
		Long:  "List the plans of a rewind server: the resources each selects and, per rule, the schedule, the vault, the retention and the next run." + serverHelp,
		Example: `  rewind plans --server http://127.0.0.1:8420
  REWIND_SERVER=https://backup.example.com REWIND_TOKEN=$(cat token) rewind plans --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			plans, err := c.Plans(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, plans)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "PLAN\tRULE\tSCHEDULE\tNEXT RUN\tVAULT\tCOPY TO\tRESOURCES")
			for _, p := range plans {
				for _, r := range p.Rules {
					next := "never"
					if r.NextRun != nil {
						next = formatTime(*r.NextRun)
					}
					var copies []string
					for _, c := range r.CopyTo {
						copies = append(copies, c.Vault)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, r.Name, r.Schedule, next, r.Vault,
						dash(strings.Join(copies, ",")), dash(strings.Join(p.Resources, ",")))
				}
				if len(p.Rules) == 0 {
					fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s\n", p.Name, dash(strings.Join(p.Resources, ",")))
				}
			}
			return tw.Flush()
		},
	}
	o.register(cmd, "print the plans as JSON")
	return cmd
}

func newResourcesCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "resources",
		Short: "List the resources the server protects",
		Long:  "List the resources configured on a rewind server: name, kind, host, tags and whether protection is continuous." + serverHelp,
		Example: `  rewind resources --server http://127.0.0.1:8420
  rewind resources --json | jq -r '.[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, err := c.Resources(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tKIND\tHOST\tCONTINUOUS\tTAGS")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", r.Name, r.Kind, dash(r.Host), r.Continuous, dash(formatTags(r.Tags)))
			}
			return tw.Flush()
		},
	}
	o.register(cmd, "print the resources as JSON")
	return cmd
}

func newVaultsCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "vaults",
		Short: "List the server's vaults",
		Long:  "List the vaults configured on a rewind server: name, site, location and whether the vault is locked." + serverHelp,
		Example: `  rewind vaults --server http://127.0.0.1:8420
  rewind vaults --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, err := c.Vaults(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, list)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tSITE\tLOCKED\tURL")
			for _, v := range list {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", v.Name, dash(v.Site), v.Locked, v.URL)
			}
			return tw.Flush()
		},
	}
	o.register(cmd, "print the vaults as JSON")
	return cmd
}

func newJobsCmd() *cobra.Command {
	var (
		o                            serverOpts
		kind, state, resource, vault string
		since, after                 string
		limit                        int
	)
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, show, start and cancel the server's jobs",
		Long: `List the jobs of a rewind server, newest first, or work with one job through the
subcommands. With --json the output is one page: {"items": [...], "next": cursor}; pass
next to --after for the following page. A table ends with the --after value when more
jobs follow.` + serverHelp,
		Example: `  rewind jobs --server http://127.0.0.1:8420
  rewind jobs --state failed --since 24h
  rewind jobs --kind backup --resource app-files --json
  rewind jobs start backup --resource app-files
  rewind jobs show 01JN3ZQ4W5X6Y7Z8A9B0C1D2E3
  rewind jobs cancel 01JN3ZQ4W5X6Y7Z8A9B0C1D2E3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			q := client.JobQuery{Kind: kind, State: state, Resource: resource, Vault: vault, Limit: limit, After: after}
			if since != "" {
				if q.Since, err = parseSince(since, time.Now()); err != nil {
					return err
				}
			}
			page, err := c.Jobs(cmd.Context(), q)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, page)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "ID\tKIND\tSTATE\tRESOURCE\tVAULT\tCREATED\tBYTES\tERROR")
			for _, j := range page.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Kind, j.State, dash(j.Resource),
					dash(jobVaults(j)), formatTime(j.CreatedAt), humanBytes(uint64(j.BytesDone)), shorten(j.Error, 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(out, "more jobs: --after %s\n", page.Next)
			}
			return nil
		},
	}
	o.register(cmd, `print one page of jobs as JSON ({"items", "next"})`)
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "only jobs of this kind: backup, restore, verify, prune, copy")
	f.StringVar(&state, "state", "", "only jobs in this state: pending, running, completed, failed, …")
	f.StringVar(&resource, "resource", "", "only jobs of this resource")
	f.StringVar(&vault, "vault", "", "only jobs reading or writing this vault")
	f.StringVar(&since, "since", "", "only jobs created since this time (RFC 3339) or this long ago (24h, 7d)")
	f.IntVar(&limit, "limit", 50, "at most this many jobs (1 to 1000)")
	f.StringVar(&after, "after", "", "the page after this cursor (from the previous page)")
	cmd.AddCommand(newJobsShowCmd(), newJobsCancelCmd(), newJobsStartCmd())
	return cmd
}

func newJobsShowCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one job",
		Long:  "Show one job of a rewind server: its state, times, progress and error." + serverHelp,
		Example: `  rewind jobs show 01JN3ZQ4W5X6Y7Z8A9B0C1D2E3
  rewind jobs show 01JN3ZQ4W5X6Y7Z8A9B0C1D2E3 --json | jq -r .state`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			j, err := c.Job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJob(cmd.OutOrStdout(), j, o.json)
		},
	}
	o.register(cmd, "print the job as JSON")
	return cmd
}

func newJobsCancelCmd() *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel a job",
		Long:    "Cancel a pending or running job; it ends ABORTED. A finished job cannot be canceled. Needs an operator token." + serverHelp,
		Example: `  rewind jobs cancel 01JN3ZQ4W5X6Y7Z8A9B0C1D2E3`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			j, err := c.CancelJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJob(cmd.OutOrStdout(), j, o.json)
		},
	}
	o.register(cmd, "print the job as JSON")
	return cmd
}

func newJobsStartCmd() *cobra.Command {
	var (
		o                                   serverOpts
		resource, vault, targetVault, point string
	)
	cmd := &cobra.Command{
		Use:   "start backup|verify|prune|copy",
		Short: "Start a job now",
		Long: `Start a job on a rewind server now and print it (it is PENDING until a worker takes it).
Needs an operator token.

  backup  --resource R [--vault V]     V defaults to the vault of the plan selecting R
  verify  --vault V [--point ID]
  prune   --vault V [--resource R]
  copy    --vault V --to-vault W --point ID     one point
  copy    --vault V --to-vault W --resource R   every point of R that W lacks (a pull)

Restores are started by "rewind restore --server".` + serverHelp,
		Example: `  rewind jobs start backup --resource app-files
  rewind jobs start backup --resource app-files --vault main --json
  rewind jobs start verify --vault main
  rewind jobs start copy --vault main --to-vault offsite --point 3f2a9c1d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "backup", "verify", "prune", "copy":
			default:
				return errs.Errorf("jobs start", errs.Invalid, "%q is not backup, verify, prune or copy", args[0]).
					WithHint("rewind jobs start backup --resource NAME; restores: rewind restore --server")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			j, err := c.StartJob(cmd.Context(), api.JobRequest{Kind: args[0], Resource: resource, Vault: vault,
				TargetVault: targetVault, Point: point})
			if err != nil {
				return err
			}
			return printJob(cmd.OutOrStdout(), j, o.json)
		},
	}
	o.register(cmd, "print the job as JSON")
	f := cmd.Flags()
	f.StringVar(&resource, "resource", "", "the resource")
	f.StringVar(&vault, "vault", "", "the vault")
	f.StringVar(&targetVault, "to-vault", "", "copy: the destination vault")
	f.StringVar(&point, "point", "", "verify, copy: the point ID")
	return cmd
}

// newServerEventsListCmd returns "list", the server's event listing, to add under the
// events command group.
func newServerEventsListCmd() *cobra.Command {
	var (
		o                   serverOpts
		since, until, after string
		source              string
		limit               int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the events a rewind server recorded",
		Long: `List the events of a rewind server's outbox, oldest first: time, detail type, resources.
With --json the output is one page: {"items": [...], "next": cursor}, each item an event
envelope as routing rules see it; pass next to --after for the following page.` + serverHelp,
		Example: `  rewind events list --server http://127.0.0.1:8420 --since 1h
  rewind events list --since 2026-03-01T00:00:00Z --until 2026-03-02T00:00:00Z --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			now := time.Now()
			q := client.EventQuery{Source: source, Limit: limit, After: after}
			if since != "" {
				if q.Since, err = parseSince(since, now); err != nil {
					return err
				}
			}
			if until != "" {
				if q.Until, err = parseSince(until, now); err != nil {
					return err
				}
			}
			page, err := c.Events(cmd.Context(), q)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, page)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "TIME\tDETAIL TYPE\tSITE\tRESOURCES")
			for _, e := range page.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", formatTime(e.Time), e.DetailType, dash(e.Site), strings.Join(e.Resources, ","))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(out, "more events: --after %s\n", page.Next)
			}
			return nil
		},
	}
	o.register(cmd, `print one page of events as JSON ({"items", "next"})`)
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "events at or after this time (RFC 3339) or this long ago (1h, 7d)")
	f.StringVar(&until, "until", "", "events before this time (RFC 3339) or this long ago")
	f.StringVar(&source, "source", "", "only events of this source (rewind.backup)")
	f.IntVar(&limit, "limit", 100, "at most this many events (1 to 1000)")
	f.StringVar(&after, "after", "", "the page after this cursor (from the previous page)")
	return cmd
}

// serverPoints lists the points a rewind server knows, newest first, for "rewind points
// --server": the resource filter is applied by the server, host and tags here. With
// asJSON it prints the catalog's point records as a JSON array.
func serverPoints(cmd *cobra.Command, url string, asJSON bool, pf pointFilter) error {
	c, err := newServerClient(url)
	if err != nil {
		return err
	}
	want, err := parseTags(pf.tags)
	if err != nil {
		return err
	}
	points := []*catalog.Point{}
	q := client.PointQuery{Resource: pf.resource, State: string(catalog.PointAvailable), Limit: api.MaxLimit}
	for {
		page, err := c.Points(cmd.Context(), q)
		if err != nil {
			return err
		}
		for _, p := range page.Items {
			if (pf.host == "" || p.Host == pf.host) && tagsMatch(p.Tags, want) {
				points = append(points, p)
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, points)
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "ID\tTIME\tVAULT\tHOST\tRESOURCE\tTAGS\tSIZE")
	for _, p := range points {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(p.ID), formatTime(p.Time), p.Vault, dash(p.Host),
			p.Resource, formatTags(p.Tags), humanBytes(uint64(p.SizeBytes)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d points\n", len(points))
	return nil
}

// serverRestore starts a restore job on a rewind server for "rewind restore --server":
// point is a point ID or "latest" (the newest available point of resource, in vault when
// given), target where to restore to. It prints the job, which is PENDING until a worker
// takes it.
func serverRestore(cmd *cobra.Command, url string, asJSON bool, resource, point, vault, target string) error {
	c, err := newServerClient(url)
	if err != nil {
		return err
	}
	j, err := c.StartJob(cmd.Context(), api.JobRequest{Kind: "restore", Resource: resource, Point: point,
		Vault: vault, Target: target})
	if err != nil {
		return err
	}
	return printJob(cmd.OutOrStdout(), j, asJSON)
}

// printJob writes one job as JSON or as "field: value" lines.
func printJob(w io.Writer, j *catalog.Job, asJSON bool) error {
	if asJSON {
		return writeJSON(w, j)
	}
	tw := newTable(w)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	tp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return formatTime(*t)
	}
	row("ID", j.ID)
	row("Kind", string(j.Kind))
	row("State", string(j.State))
	row("Resource", j.Resource)
	row("Vault", j.Vault)
	row("Target vault", j.TargetVault)
	row("Plan", strings.Trim(j.Plan+"/"+j.Rule, "/"))
	row("Host", j.Host)
	row("Created", formatTime(j.CreatedAt))
	row("Scheduled for", tp(j.ScheduledFor))
	row("Started", tp(j.StartedAt))
	row("Finished", tp(j.FinishedAt))
	if j.BytesTotal > 0 || j.BytesDone > 0 {
		row("Progress", fmt.Sprintf("%s of %s, %d files", humanBytes(uint64(j.BytesDone)), humanBytes(uint64(j.BytesTotal)), j.FilesDone))
	}
	if j.Attempt > 1 {
		row("Attempt", fmt.Sprint(j.Attempt))
	}
	row("Point", j.PointID)
	row("Created resource", j.CreatedResource)
	row("Error", j.Error)
	return tw.Flush()
}

// parseSince reads a time as RFC 3339 or as a duration before now ("90m", "24h", "7d").
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		var n int
		if _, scanErr := fmt.Sscanf(days, "%d", &n); scanErr == nil && fmt.Sprint(n) == days {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, errs.Errorf("--since", errs.Invalid, "%q is neither an RFC 3339 time nor a duration", s).
			WithHint("write 2026-03-01T00:00:00Z, 90m, 24h or 7d")
	}
	return now.Add(-d), nil
}

func jobVaults(j *catalog.Job) string {
	if j.TargetVault != "" {
		return j.Vault + "->" + j.TargetVault
	}
	return j.Vault
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
