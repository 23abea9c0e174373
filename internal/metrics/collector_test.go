package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/metrics"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.Tx(ctx, func(tx catalog.Tx) error {
		return tx.SyncConfig(ctx, []catalog.Site{{Name: "primary"}, {Name: "recovery"}},
			[]catalog.Vault{{Name: "main", Site: "primary", URL: "/v/main"}, {Name: "main2", Site: "primary", URL: "/v/main2"},
				{Name: "offsite", Site: "recovery", URL: "/v/off"}, {Name: "loose", URL: "/v/loose"}},
			[]catalog.Resource{{Name: "app", Kind: "files"}, {Name: "db", Kind: "postgres"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCollector(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	point := func(id, res, vault string, age time.Duration, state catalog.PointState) *catalog.Point {
		return &catalog.Point{ID: id, Resource: res, Vault: vault, Kind: "files", Time: now.Add(-age), SizeBytes: 100, State: state}
	}
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	err := st.Tx(ctx, func(tx catalog.Tx) error {
		for _, p := range []*catalog.Point{
			point("a1", "app", "main", 3*time.Hour, catalog.PointAvailable),
			point("a2", "app", "main2", 30*time.Minute, catalog.PointAvailable), // newest at primary
			point("a3", "app", "offsite", 2*time.Hour, catalog.PointAvailable),
			point("a4", "app", "offsite", 10*time.Minute, catalog.PointDeleted), // deleted: not counted
			point("d1", "db", "loose", 90*time.Second, catalog.PointAvailable),
		} {
			if err := tx.UpsertPoint(ctx, p); err != nil {
				return err
			}
		}
		if _, err := tx.MarkPointDeleted(ctx, "a4"); err != nil {
			return err
		}
		for _, j := range []*catalog.Job{
			{Kind: catalog.JobBackup, State: catalog.StatePending},
			{Kind: catalog.JobBackup, BytesDone: 500},
			{Kind: catalog.JobBackup, BytesDone: 1500},
			{Kind: catalog.JobRestore},
		} {
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{State: catalog.Ptr(catalog.StateCreated)})
		if err != nil {
			return err
		}
		// Two backups run 10 s and 2 min; the restore fails after 1 h.
		for i, d := range []time.Duration{10 * time.Second, 2 * time.Minute, time.Hour} {
			j := jobs[i]
			for _, s := range []catalog.State{catalog.StatePending, catalog.StateRunning} {
				if _, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: catalog.Ptr(s)}); err != nil {
					return err
				}
			}
			final := catalog.StateCompleted
			if j.Kind == catalog.JobRestore {
				final = catalog.StateFailed
			}
			if _, err := tx.UpdateJob(ctx, j.ID, catalog.JobUpdate{State: &final, StartedAt: at(-d), FinishedAt: at(0)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.NewCollector(st, func() time.Time { return now })

	want := `
# HELP rewind_rpo_exposure_seconds Seconds since the newest available recovery point of the resource in a vault of the site (site "" for vaults of no site). Absent when the site holds no point of the resource.
# TYPE rewind_rpo_exposure_seconds gauge
rewind_rpo_exposure_seconds{resource="app",site="primary"} 1800
rewind_rpo_exposure_seconds{resource="app",site="recovery"} 7200
rewind_rpo_exposure_seconds{resource="db",site=""} 90
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "rewind_rpo_exposure_seconds"); err != nil {
		t.Error(err)
	}
	// now is 1772366400: app's newest point is 30 min old, db's 90 s.
	want = `
# HELP rewind_last_point_timestamp_seconds Capture time of the newest available recovery point of each resource (for a continuous log, the end of its restorable range), as a Unix time.
# TYPE rewind_last_point_timestamp_seconds gauge
rewind_last_point_timestamp_seconds{resource="app"} 1.7723646e+09
rewind_last_point_timestamp_seconds{resource="db"} 1.77236631e+09
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "rewind_last_point_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	want = `
# HELP rewind_job_bytes_total Bytes processed by finished jobs, by kind.
# TYPE rewind_job_bytes_total counter
rewind_job_bytes_total{kind="BACKUP"} 2000
rewind_job_bytes_total{kind="COPY"} 0
rewind_job_bytes_total{kind="PRUNE"} 0
rewind_job_bytes_total{kind="RESTORE"} 0
rewind_job_bytes_total{kind="VERIFY"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "rewind_job_bytes_total"); err != nil {
		t.Error(err)
	}
	out, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, "rewind_jobs", "rewind_job_duration_seconds", "rewind_catalog_up")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`rewind_jobs{kind="BACKUP",state="COMPLETED"} 2`,
		`rewind_jobs{kind="BACKUP",state="PENDING"} 1`,
		`rewind_jobs{kind="RESTORE",state="FAILED"} 1`,
		`rewind_jobs{kind="VERIFY",state="RUNNING"} 0`,
		`rewind_job_duration_seconds_bucket{kind="BACKUP",le="15"} 1`,
		`rewind_job_duration_seconds_bucket{kind="BACKUP",le="300"} 2`,
		`rewind_job_duration_seconds_sum{kind="BACKUP"} 130`,
		`rewind_job_duration_seconds_count{kind="BACKUP"} 2`,
		`rewind_job_duration_seconds_bucket{kind="RESTORE",le="1800"} 0`,
		`rewind_job_duration_seconds_bucket{kind="RESTORE",le="3600"} 1`,
		`rewind_catalog_up 1`,
	} {
		if !strings.Contains(string(out), line+"\n") {
			t.Errorf("missing %q in\n%s", line, out)
		}
	}
	if n := testutil.CollectAndCount(c, "rewind_jobs"); n != 5*8 {
		t.Errorf("rewind_jobs has %d series, want every kind and state (40)", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// brokenStore fails every transaction, as an unreachable database does.
type brokenStore struct{ catalog.Store }

func (brokenStore) Tx(context.Context, func(catalog.Tx) error) error {
	return errs.E("sqlstore.Tx", errs.Unavailable, errors.New("connection refused"))
}

func TestCollectorCatalogDown(t *testing.T) {
	c := metrics.NewCollector(brokenStore{}, nil)
	if _, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain); err == nil ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("scrape of a broken catalog: %v, want the error", err)
	}
}
