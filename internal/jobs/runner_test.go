package jobs_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
)

// TestRunner runs jobs directly, without a queue, on SQLite.
func TestRunner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	st := f.openStore(t)
	r, _ := f.newRunner(t, st)

	run := func(j *catalog.Job) *catalog.Job {
		t.Helper()
		id := createJob(t, st, j)
		if err := r.Run(ctx, id); err != nil {
			t.Fatalf("Run %s: %v", j.Kind, err)
		}
		return getJob(t, st, id)
	}

	// A backup made on demand (no plan) completes; its retention job is left PENDING.
	b := run(&catalog.Job{Kind: catalog.JobBackup, Resource: "docs", Vault: "main"})
	if b.State != catalog.StateCompleted || b.PointID == "" || b.BytesDone != 10 {
		t.Fatalf("backup: %+v", b)
	}
	if got := strings.Join(jobStates(t, st, b.ID), " "); got != "CREATED PENDING RUNNING COMPLETED" {
		t.Fatalf("backup events: %s", got)
	}
	prunes := listJobs(t, st, catalog.JobFilter{Kind: catalog.Ptr(catalog.JobPrune)})
	if len(prunes) != 1 || prunes[0].State != catalog.StatePending || prunes[0].Vault != "main" || prunes[0].Resource != "docs" {
		t.Fatalf("retention job: %+v", prunes)
	}
	// Running it again is a no-op; a RUNNING job is someone else's.
	if err := r.Run(ctx, b.ID); err != nil {
		t.Fatalf("Run of a finished job: %v", err)
	}
	if err := r.Run(ctx, prunes[0].ID); err != nil {
		t.Fatal(err)
	}
	if p := getJob(t, st, prunes[0].ID); p.State != catalog.StateCompleted || p.FilesDone != 0 {
		t.Fatalf("prune with one point under keep_last 2: %+v", p)
	}

	// A plan's job gets its completion deadline when it starts: the window counts from there.
	pj := run(&catalog.Job{Kind: catalog.JobBackup, Resource: "docs", Vault: "main", Plan: "gold", Rule: "daily"})
	if pj.State != catalog.StateCompleted || pj.StartedAt == nil || pj.CompleteBy == nil ||
		!pj.CompleteBy.Equal(pj.StartedAt.Add(8*time.Hour)) {
		t.Fatalf("plan job's completion deadline: started %v, complete by %v", pj.StartedAt, pj.CompleteBy)
	}

	for name, tc := range map[string]struct {
		job       *catalog.Job
		state     catalog.State
		errSubstr string
	}{
		"files on another host": {&catalog.Job{Kind: catalog.JobBackup, Resource: "far", Vault: "main"},
			catalog.StateFailed, "an agent there runs its backups"},
		"unknown resource": {&catalog.Job{Kind: catalog.JobBackup, Resource: "nope", Vault: "main"},
			catalog.StateFailed, `resource "nope" is not configured`},
		"unknown vault": {&catalog.Job{Kind: catalog.JobVerify, Vault: "nowhere"},
			catalog.StateFailed, `vault "nowhere" is not configured`},
		"verify": {&catalog.Job{Kind: catalog.JobVerify, Vault: "main", Params: []byte(`{"read_data":true}`)},
			catalog.StateCompleted, ""},
		"verify bad params": {&catalog.Job{Kind: catalog.JobVerify, Vault: "main", Params: []byte(`{"readData":true}`)},
			catalog.StateFailed, "unknown field"},
		"restore relative target": {&catalog.Job{Kind: catalog.JobRestore, Vault: "main", Resource: "docs",
			Params: []byte(`{"point":"latest","target":"out"}`)}, catalog.StateFailed, "absolute params.target"},
		"restore latest": {&catalog.Job{Kind: catalog.JobRestore, Vault: "main", Resource: "docs",
			Params: []byte(`{"point":"latest","target":"` + filepath.Join(f.dir, "out") + `"}`)}, catalog.StateCompleted, ""},
		"copy without point": {&catalog.Job{Kind: catalog.JobCopy, Vault: "main", TargetVault: "offsite"},
			catalog.StateFailed, "params.point"},
		"expired": {&catalog.Job{Kind: catalog.JobVerify, Vault: "main", StartBy: catalog.Ptr(f.past())},
			catalog.StateExpired, "start window closed"},
	} {
		t.Run(name, func(t *testing.T) {
			got := run(tc.job)
			if got.State != tc.state || !strings.Contains(got.Error, tc.errSubstr) {
				t.Fatalf("%s: %s %q, want %s with %q", name, got.State, got.Error, tc.state, tc.errSubstr)
			}
		})
	}

	// A vault that cannot be reached: the job is PENDING again and Run says so.
	f.setUnavailable("main", true)
	id := createJob(t, st, &catalog.Job{Kind: catalog.JobVerify, Vault: "main"})
	if err := r.Run(ctx, id); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Run with the vault down: %v", err)
	}
	if j := getJob(t, st, id); j.State != catalog.StatePending || j.Attempt != 1 {
		t.Fatalf("after a retryable failure: %+v", j)
	}
	if err := r.Run(ctx, "01NOSUCHJOB0000000000000000"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Run of an unknown job: %v", err)
	}
	if _, err := jobs.NewRunner(jobs.Env{}, jobs.RunnerOptions{}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("NewRunner without a store: %v", err)
	}
}
