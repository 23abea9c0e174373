package control_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/control"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/testenv/postgres"
)

const example = `
sites: {primary: {}, recovery: {}}
vaults:
  main:    {site: primary,  url: /srv/vaults/main,    password_file: /etc/rewind/main.key}
  offsite: {site: recovery, url: /srv/vaults/offsite, password_file: /etc/rewind/offsite.key}
resources:
  app-files: {kind: files, paths: [/srv/app/data], tags: {tier: gold, app: shop}}
  web-files: {kind: files, paths: [/srv/web], tags: {tier: gold}}
plans:
  gold:
    select: {tags: {tier: gold}}
    rules:
      - name: frequent
        schedule: "*/5 * * * *"
        start_window: 1h
        completion_window: 8h
        vault: main
        retention: {keep_last: 12, keep_daily: 7, delete_after: 35d}
        copy_to: [{vault: offsite, retention: {delete_after: 90d}}]
        tags: {plan: gold}
`

// fixture is a Service over a catalog with a settable clock and a recording queue.
type fixture struct {
	svc    *control.Service
	store  catalog.Store
	mu     sync.Mutex
	now    time.Time
	queued []string
}

func newFixture(t *testing.T, store catalog.Store) *fixture {
	t.Helper()
	cfg, err := config.Parse("rewind.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, now: time.Date(2026, 11, 25, 10, 3, 0, 0, time.UTC)}
	f.svc = &control.Service{
		Store: store, Config: cfg, Site: "primary",
		Now: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		Enqueue: func(ctx context.Context, id string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.queued = append(f.queued, id)
			return nil
		},
	}
	return f
}

func (f *fixture) set(t time.Time) { f.mu.Lock(); f.now = t; f.mu.Unlock() }

func sqliteStore(t *testing.T, path string) catalog.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func jobs(t *testing.T, s catalog.Store) []*catalog.Job {
	t.Helper()
	var out []*catalog.Job
	if err := s.Tx(context.Background(), func(tx catalog.Tx) error {
		var err error
		out, err = tx.ListJobs(context.Background(), catalog.JobFilter{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTickCreatesEachDueJobOnce(t *testing.T) {
	f := newFixture(t, sqliteStore(t, filepath.Join(t.TempDir(), "catalog.db")))
	ctx := context.Background()
	rep, err := f.svc.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 2 {
		t.Fatalf("first tick created %d jobs, want 2 (one per gold resource)", len(rep.Created))
	}
	for _, j := range jobs(t, f.store) {
		if j.State != catalog.StatePending || j.Kind != catalog.JobBackup || j.Vault != "main" || j.Plan != "gold" ||
			!j.ScheduledFor.Equal(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)) ||
			!j.StartBy.Equal(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)) ||
			j.CompleteBy != nil { // set when the job starts, from the rule's completion window
			t.Errorf("job %+v", j)
		}
	}
	if rep, _ := f.svc.Tick(ctx); len(rep.Created) != 0 {
		t.Errorf("second tick at the same time created %d jobs", len(rep.Created))
	}
	f.set(time.Date(2026, 11, 25, 10, 7, 0, 0, time.UTC))
	if rep, _ := f.svc.Tick(ctx); len(rep.Created) != 2 {
		t.Errorf("tick at 10:07 created %d jobs, want 2 (the 10:05 run)", len(rep.Created))
	}
	if len(f.queued) != 4 {
		t.Errorf("%d jobs queued, want 4", len(f.queued))
	}
	// Every job has its state-change event, written with it.
	var events []*catalog.Event
	f.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		events, err = tx.ListEvents(ctx, catalog.EventFilter{})
		return err
	})
	if len(events) != 4 || events[0].DetailType != "Backup Job State Change" {
		t.Errorf("%d events, first %+v", len(events), events[0])
	}
}

func TestMissedRunsStartOnceInsideTheirWindow(t *testing.T) {
	f := newFixture(t, sqliteStore(t, filepath.Join(t.TempDir(), "catalog.db")))
	ctx := context.Background()
	f.svc.Tick(ctx) // 10:03: the 10:00 run
	// The server is down from 10:03 to 12:32: of the 29 missed runs, only 12:30 starts.
	f.set(time.Date(2026, 11, 25, 12, 32, 0, 0, time.UTC))
	rep, err := f.svc.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 2 {
		t.Fatalf("created %d jobs after downtime, want 2", len(rep.Created))
	}
	for _, j := range jobs(t, f.store) {
		if j.ScheduledFor.Hour() == 12 && j.ScheduledFor.Minute() != 30 {
			t.Errorf("a missed run was scheduled: %v", j.ScheduledFor)
		}
	}
	// The 10:00 jobs were never started: their start window closed at 11:00.
	if len(rep.Expired) != 2 {
		t.Errorf("expired %d jobs, want the two 10:00 jobs", len(rep.Expired))
	}
	for _, j := range jobs(t, f.store) {
		if j.ScheduledFor.Hour() == 10 && (j.State != catalog.StateExpired || j.Error == "") {
			t.Errorf("10:00 job: %s %q", j.State, j.Error)
		}
	}
}

// twoServers ticks two services on one catalog at the same moment, many times over.
func twoServers(t *testing.T, a, b *fixture) {
	ctx := context.Background()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 12; i++ {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		a.set(at)
		b.set(at)
		var wg sync.WaitGroup
		for _, f := range []*fixture{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.svc.Tick(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	all := jobs(t, a.store)
	if len(all) != 24 {
		t.Errorf("two servers created %d jobs for 12 runs of 2 resources, want 24", len(all))
	}
	if n := len(a.queued) + len(b.queued); n != 24 {
		t.Errorf("two servers queued %d jobs, want 24", n)
	}
}

func TestTwoServersOnOneSQLiteCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	twoServers(t, newFixture(t, sqliteStore(t, path)), newFixture(t, sqliteStore(t, path)))
}

func TestTwoServersOnOnePostgres(t *testing.T) {
	pg := postgres.Start(t, postgres.Options{})
	url := pg.CreateDatabase(t)
	open := func() catalog.Store {
		s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	twoServers(t, newFixture(t, open()), newFixture(t, open()))
}

func TestSubmit(t *testing.T) {
	f := newFixture(t, sqliteStore(t, filepath.Join(t.TempDir(), "catalog.db")))
	ctx := context.Background()
	j, err := f.svc.Submit(ctx, control.Request{Kind: catalog.JobBackup, Resource: "app-files"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Vault != "main" || j.Plan != "gold" || j.Rule != "frequent" || j.State != catalog.StatePending || len(f.queued) != 1 || f.queued[0] != j.ID {
		t.Errorf("submitted %+v, queued %v", j, f.queued)
	}
	bad := []struct {
		r    control.Request
		kind errs.Kind
	}{
		{control.Request{Kind: "NAP", Resource: "app-files"}, errs.Invalid},
		{control.Request{Kind: catalog.JobBackup}, errs.Invalid},
		{control.Request{Kind: catalog.JobBackup, Resource: "nope"}, errs.NotFound},
		{control.Request{Kind: catalog.JobBackup, Resource: "app-files", Vault: "nope"}, errs.NotFound},
		{control.Request{Kind: catalog.JobCopy, Vault: "main"}, errs.Invalid},
	}
	for _, c := range bad {
		if _, err := f.svc.Submit(ctx, c.r); !errs.Is(err, c.kind) {
			t.Errorf("%+v: %v, want kind %v", c.r, err, c.kind)
		}
	}
	if n := len(jobs(t, f.store)); n != 1 {
		t.Errorf("bad requests created jobs: %d in the catalog", n)
	}
}

const recoveryConfig = `
sites: {primary: {}, recovery: {}}
vaults:
  main:    {site: primary,  url: /srv/vaults/main,    password_file: /etc/rewind/main.key, read_only: true}
  offsite: {site: recovery, url: /srv/vaults/offsite, password_file: /etc/rewind/offsite.key}
resources:
  app-files: {kind: files, host: web1, paths: [/srv/app/data], tags: {tier: gold}}
plans:
  pull:
    select: {tags: {tier: gold}}
    rules:
      - {name: hourly, schedule: "0 * * * *", pull_from: main, vault: offsite, retention: {delete_after: 90d}}
`

// TestPullRules: a recovery site's server schedules a pull rule as a copy job from the
// read-only vault into its own (run by the server, not the resource's host), and refuses
// jobs that would write the read-only vault.
func TestPullRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, sqliteStore(t, filepath.Join(t.TempDir(), "catalog.db")))
	cfg, err := config.Parse("recovery.yaml", []byte(recoveryConfig))
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Config, f.svc.Site = cfg, "recovery"
	rep, err := f.svc.Tick(ctx)
	if err != nil || len(rep.Created) != 1 {
		t.Fatalf("tick: %+v %v", rep, err)
	}
	j := jobs(t, f.store)[0]
	if j.Kind != catalog.JobCopy || j.Vault != "main" || j.TargetVault != "offsite" || j.Resource != "app-files" ||
		j.Host != "" || j.Plan != "pull" || j.Rule != "hourly" || len(j.Params) != 0 {
		t.Fatalf("pull job %+v", j)
	}
	for _, r := range []control.Request{
		{Kind: catalog.JobBackup, Resource: "app-files", Vault: "main"},
		{Kind: catalog.JobPrune, Vault: "main"},
		{Kind: catalog.JobVerify, Vault: "main"},
		{Kind: catalog.JobCopy, Vault: "offsite", Target: "main", Params: []byte(`{"point":"latest"}`)},
	} {
		if _, err := f.svc.Submit(ctx, r); !errs.Is(err, errs.Invalid) {
			t.Errorf("%+v on a read-only vault: %v", r, err)
		}
	}
	// A restore target URL with a password is refused before the job stores it.
	if _, err := f.svc.Submit(ctx, control.Request{Kind: catalog.JobRestore, Resource: "app-files", Vault: "offsite",
		Params: []byte(`{"point":"latest","target":"mysql://root:secret@db2:3306/"}`)}); !errs.Is(err, errs.Invalid) || strings.Contains(err.Error(), "secret") {
		t.Errorf("restore to a URL with a password: %v", err)
	}
	// Restoring from it and pulling on demand are fine.
	if _, err := f.svc.Submit(ctx, control.Request{Kind: catalog.JobCopy, Resource: "app-files", Vault: "main", Target: "offsite"}); err != nil {
		t.Errorf("pull on demand: %v", err)
	}
	if _, err := f.svc.Submit(ctx, control.Request{Kind: catalog.JobRestore, Resource: "app-files", Vault: "main",
		Params: []byte(`{"point":"latest","target":"/srv/restore"}`)}); err != nil {
		t.Errorf("restore from a read-only vault: %v", err)
	}
}
