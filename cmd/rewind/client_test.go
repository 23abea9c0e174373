package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/api"
	"github.com/rewind-dr/rewind/internal/api/apitest"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// runClient runs a server client command line and returns its exit code and output.
func runClient(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := &cobra.Command{Use: "rewind", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newServerClientCmds()...)
	events := newEventsCmd()
	events.AddCommand(newServerEventsListCmd())
	root.AddCommand(events)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		printError(&out, err)
		return exitCodeFor(err), out.String()
	}
	return 0, out.String()
}

func decodeOut[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, out)
	}
	return v
}

func TestClientCommands(t *testing.T) {
	env := apitest.New(t, true)
	env.AddPoint(t, "aaaaaaaaaaaaaaaa", "app-files", "main", apitest.Now.Add(-time.Hour), 2048)
	t.Setenv(envServer, env.URL)
	t.Setenv(envToken, apitest.OperatorToken)

	code, out := runClient(t, "plans")
	if code != 0 || !strings.Contains(out, "gold") || !strings.Contains(out, "*/5 * * * *") || !strings.Contains(out, "offsite") {
		t.Errorf("plans: %d\n%s", code, out)
	}
	if plans := decodeOut[[]api.Plan](t, mustRun(t, "plans", "--json")); len(plans) != 1 || plans[0].Rules[0].NextRun == nil {
		t.Errorf("plans --json: %+v", plans)
	}
	if code, out := runClient(t, "resources"); code != 0 || !strings.Contains(out, "app-db") || !strings.Contains(out, "tier=gold") {
		t.Errorf("resources: %d\n%s", code, out)
	}
	if res := decodeOut[[]catalog.Resource](t, mustRun(t, "resources", "--json")); len(res) != 2 {
		t.Errorf("resources --json: %+v", res)
	}
	if code, out := runClient(t, "vaults", "--server", env.URL); code != 0 || !strings.Contains(out, "recovery") {
		t.Errorf("vaults: %d\n%s", code, out)
	}
	if v := decodeOut[[]catalog.Vault](t, mustRun(t, "vaults", "--json")); len(v) != 2 {
		t.Errorf("vaults --json: %+v", v)
	}

	j := decodeOut[catalog.Job](t, mustRun(t, "jobs", "start", "backup", "--resource", "app-files", "--json"))
	if j.Kind != catalog.JobBackup || j.Vault != "main" || j.State != catalog.StatePending {
		t.Fatalf("jobs start backup: %+v", j)
	}
	if out := mustRun(t, "jobs", "show", j.ID); !strings.Contains(out, "PENDING") || !strings.Contains(out, "app-files") {
		t.Errorf("jobs show:\n%s", out)
	}
	page := decodeOut[api.List[*catalog.Job]](t, mustRun(t, "jobs", "--kind", "backup", "--since", apitest.Now.Add(-time.Hour).Format(time.RFC3339), "--json"))
	if len(page.Items) != 1 || page.Items[0].ID != j.ID {
		t.Errorf("jobs --json: %+v", page)
	}
	if out := mustRun(t, "jobs"); !strings.Contains(out, j.ID) || !strings.Contains(out, "BACKUP") {
		t.Errorf("jobs:\n%s", out)
	}
	if c := decodeOut[catalog.Job](t, mustRun(t, "jobs", "cancel", j.ID, "--json")); c.State != catalog.StateAborted {
		t.Errorf("jobs cancel: %+v", c)
	}
	ev := decodeOut[api.List[*catalog.Event]](t, mustRun(t, "events", "list", "--json"))
	if len(ev.Items) != 3 {
		t.Errorf("events list --json: %d events", len(ev.Items))
	}
	if out := mustRun(t, "events", "list", "--limit", "1"); !strings.Contains(out, "Backup Job State Change") || !strings.Contains(out, "--after") {
		t.Errorf("events list:\n%s", out)
	}

	// Errors reach the exit code through exitCodeFor.
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"jobs", "show", "NOPE"}, exitNotFound, "not found"},
		{[]string{"jobs", "cancel", j.ID}, exitFailure, "ABORTED"},
		{[]string{"jobs", "start", "backup"}, exitUsage, `needs field "resource"`},
		{[]string{"jobs", "start", "restore"}, exitUsage, "rewind restore --server"},
		{[]string{"jobs", "--state", "sleepy"}, exitUsage, "not a job state"},
		{[]string{"jobs", "--since", "last tuesday"}, exitUsage, "RFC 3339"},
		{[]string{"vaults", "--server", "ftp://x"}, exitUsage, "http(s)"},
	}
	for _, c := range cases {
		code, out := runClient(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) || !strings.Contains(out, "hint:") {
			t.Errorf("%v: exit %d, want %d with %q and a hint:\n%s", c.args, code, c.code, c.want, out)
		}
	}
	t.Setenv(envToken, apitest.ViewerToken)
	if code, out := runClient(t, "jobs", "start", "prune", "--vault", "main"); code != exitWrongKey || !strings.Contains(out, "needs operator") {
		t.Errorf("viewer starting a job: %d\n%s", code, out)
	}
	t.Setenv(envToken, "")
	if code, out := runClient(t, "plans"); code != exitWrongKey || !strings.Contains(out, "REWIND_TOKEN") {
		t.Errorf("no token: %d\n%s", code, out)
	}
	t.Setenv(envServer, "")
	if code, out := runClient(t, "plans"); code != exitUsage || !strings.Contains(out, envServer) {
		t.Errorf("no server: %d\n%s", code, out)
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out := runClient(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, out)
	}
	return out
}

func TestServerPointsAndRestore(t *testing.T) {
	env := apitest.New(t, false)
	env.AddPoint(t, "aaaaaaaaaaaaaaaa", "app-files", "main", apitest.Now.Add(-time.Hour), 2048)
	env.AddPoint(t, "bbbbbbbbbbbbbbbb", "app-files", "offsite", apitest.Now.Add(-2*time.Hour), 10)
	env.AddPoint(t, "cccccccccccccccc", "app-db", "main", apitest.Now.Add(-3*time.Hour), 10)
	newCmd := func() (*cobra.Command, *bytes.Buffer) {
		var out bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetOut(&out)
		cmd.SetContext(context.Background())
		return cmd, &out
	}
	cmd, out := newCmd()
	if err := serverPoints(cmd, env.URL, true, pointFilter{resource: "app-files"}); err != nil {
		t.Fatal(err)
	}
	pts := decodeOut[[]*catalog.Point](t, out.String())
	if len(pts) != 2 || pts[0].ID != "aaaaaaaaaaaaaaaa" {
		t.Errorf("serverPoints --json: %+v", pts)
	}
	cmd, out = newCmd()
	if err := serverPoints(cmd, env.URL, false, pointFilter{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3 points") || !strings.Contains(out.String(), "2.0 KiB") {
		t.Errorf("serverPoints table:\n%s", out)
	}
	cmd, _ = newCmd()
	if err := serverPoints(cmd, env.URL, false, pointFilter{tags: []string{"oops"}}); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad tag: %v", err)
	}

	cmd, out = newCmd()
	if err := serverRestore(cmd, env.URL, true, "app-files", "latest", "offsite", "/srv/restore"); err != nil {
		t.Fatal(err)
	}
	j := decodeOut[catalog.Job](t, out.String())
	if j.Kind != catalog.JobRestore || j.PointID != "bbbbbbbbbbbbbbbb" || j.Vault != "offsite" {
		t.Errorf("serverRestore: %+v", j)
	}
	if r := env.Jobs.Requests(); len(r) != 1 || r[0].Target != "/srv/restore" {
		t.Errorf("restore request: %+v", r)
	}
	cmd, _ = newCmd()
	if err := serverRestore(cmd, env.URL, false, "app-files", "latest", "", ""); !errs.Is(err, errs.Invalid) {
		t.Errorf("restore without target: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-02-01T00:00:00Z", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"-1h", time.Time{}, false},
		{"7days", time.Time{}, false},
		{"d", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, c := range cases {
		got, err := parseSince(c.in, now)
		if (err == nil) != c.ok || (c.ok && !got.Equal(c.want)) {
			t.Errorf("parseSince(%q) = %v, %v", c.in, got, err)
		}
	}
}
