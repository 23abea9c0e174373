package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/testenv/postgres"
	"github.com/rewind-dr/rewind/internal/vault"
)

// TestQueue runs every queue scenario on SQLite and on a real PostgreSQL.
func TestQueue(t *testing.T) {
	pg := postgres.Start(t, postgres.Options{})
	dialects := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }},
		{"postgres", func(t *testing.T) string { return pg.CreateDatabase(t) }},
	}
	scenarios := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"BackupCopyRetentionRestore", testBackupCopyRetention},
		{"RetryUntilWindowCloses", testRetry},
		{"TwoServersEnqueueTwiceRunOnce", testTwoServers},
		{"KilledMidJob", testKilled},
		{"Cancel", testCancel},
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newFixture(t, d.dsn(t))) })
			}
		})
	}
}

func testBackupCopyRetention(t *testing.T, f *fixture) {
	ctx := context.Background()
	s := f.newServer(t, "srv", jobs.QueueOptions{PerVault: 1})
	s.start(t)
	var backups []*catalog.Job
	for i := 0; i < 3; i++ {
		writeFile(t, filepath.Join(f.src, "a.txt"), fmt.Sprintf("alpha %d", i))
		id := createJob(t, s.store, backupJob())
		if err := s.queue.Enqueue(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitState(t, s.store, id, catalog.StateCompleted)
		waitIdle(t, s.store)
		backups = append(backups, getJob(t, s.store, id))
	}

	// The first backup: its states in order, its point announced in the same transaction
	// as its completion (just before it).
	b0 := backups[0]
	if got := strings.Join(jobStates(t, s.store, b0.ID), " "); got != "PENDING RUNNING COMPLETED" {
		t.Fatalf("backup events: %s", got)
	}
	// Its point is announced after it started and before it completed (in the completing
	// transaction, with the follow-up jobs it created).
	pointAt, runningAt, completedAt := -1, -1, -1
	for i, e := range events(t, s.store) {
		switch {
		case e.d["jobId"] == b0.ID && e.d["state"] == "RUNNING":
			runningAt = i
		case e.d["jobId"] == b0.ID && e.d["state"] == "COMPLETED":
			completedAt = i
		case e.DetailType == catalog.DetailPoint && e.d["pointId"] == b0.PointID && e.d["status"] == "AVAILABLE":
			pointAt = i
		}
	}
	if !(runningAt < pointAt && pointAt < completedAt) {
		t.Fatalf("event positions: running %d, point %d, completed %d", runningAt, pointAt, completedAt)
	}
	if b0.PointID == "" || b0.StartedAt == nil || b0.FinishedAt == nil || b0.FilesDone != 2 || b0.Host != "srv" {
		t.Fatalf("completed backup: %+v", b0)
	}

	// Retention keep_last 2 in main: the first point is deleted, in the vault and the
	// catalog, with its event.
	_, mainPoints := f.vaultPoints(t, "main")
	if len(mainPoints) != 2 || !hasPoint(mainPoints, backups[1].PointID) || !hasPoint(mainPoints, backups[2].PointID) {
		t.Fatalf("main holds %d points, want the last two", len(mainPoints))
	}
	cps := listPoints(t, s.store, catalog.PointFilter{Vault: catalog.Ptr("main")})
	if len(cps) != 3 || cps[0].ID != b0.PointID || cps[0].State != catalog.PointDeleted ||
		cps[1].State != catalog.PointAvailable || cps[2].State != catalog.PointAvailable {
		t.Fatalf("catalog points of main: %+v", cps)
	}
	if cps[0].Tags["app"] != "docs" || cps[0].Tags["plan"] != "gold" || cps[0].Kind != "files" {
		t.Fatalf("point tags and kind: %+v", cps[0])
	}
	deleted := 0
	for _, e := range events(t, s.store) {
		if e.DetailType == catalog.DetailPoint && e.d["status"] == "DELETED" && e.d["vault"] == "main" {
			deleted++
			if e.d["pointId"] != b0.PointID {
				t.Fatalf("deleted %v, want %s", e.d["pointId"], b0.PointID)
			}
		}
	}
	if deleted != 1 {
		t.Fatalf("%d deletion events, want 1", deleted)
	}

	// A COPY job per backup, each followed by offsite's own retention (keep_last 1).
	copies := listJobs(t, s.store, catalog.JobFilter{Kind: catalog.Ptr(catalog.JobCopy)})
	if len(copies) != 3 {
		t.Fatalf("%d copy jobs, want 3", len(copies))
	}
	for _, c := range copies {
		if c.State != catalog.StateCompleted || c.TargetVault != "offsite" || c.Vault != "main" {
			t.Fatalf("copy job: %+v", c)
		}
	}
	_, offPoints := f.vaultPoints(t, "offsite")
	if len(offPoints) != 1 {
		t.Fatalf("offsite holds %d points, want 1", len(offPoints))
	}
	last := offPoints[0]
	cp := listPoints(t, s.store, catalog.PointFilter{Vault: catalog.Ptr("offsite"), State: catalog.Ptr(catalog.PointAvailable)})
	if len(cp) != 1 || cp[0].ID != last.ID.String() || cp[0].CopiedFrom != backups[2].PointID {
		t.Fatalf("catalog copy points: %+v, want %s copied from %s", cp, last.ID, backups[2].PointID)
	}
	// The copy restores from offsite, opened with offsite's own password file only.
	target := filepath.Join(f.dir, "restored")
	params, _ := json.Marshal(jobs.RestoreParams{Point: last.ID.String(), Target: target})
	rid := createJob(t, s.store, &catalog.Job{Kind: catalog.JobRestore, State: catalog.StatePending,
		Resource: "docs", Vault: "offsite", Params: params})
	if err := s.queue.Enqueue(ctx, rid); err != nil {
		t.Fatal(err)
	}
	rj := waitState(t, s.store, rid, catalog.StateCompleted, catalog.StateFailed)
	if rj.State != catalog.StateCompleted || rj.CreatedResource != target {
		t.Fatalf("restore: %+v", rj)
	}
	for name, want := range map[string]string{"a.txt": "alpha 2", "sub/b.txt": "bravo"} {
		got, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(got) != want {
			t.Fatalf("restored %s: %q %v, want %q", name, got, err, want)
		}
	}
	for _, e := range events(t, s.store) {
		if e.d["jobId"] == rid && e.d["state"] == "COMPLETED" {
			tags, _ := e.d["resourceTags"].(map[string]any)
			if e.d["createdResource"] != target || tags["app"] != "docs" || e.d["sourceResource"] != "docs" {
				t.Fatalf("restore event detail: %v", e.d)
			}
			return
		}
	}
	t.Fatal("no COMPLETED event for the restore")
}

func hasPoint(ps []*vault.Point, id string) bool {
	for _, p := range ps {
		if p.ID.String() == id {
			return true
		}
	}
	return false
}
