package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
)

func count(states []string, s string) int {
	n := 0
	for _, x := range states {
		if x == s {
			n++
		}
	}
	return n
}

func testRetry(t *testing.T, f *fixture) {
	ctx := context.Background()
	s := f.newServer(t, "srv", jobs.QueueOptions{})
	s.start(t)
	f.setUnavailable("main", true)

	// Unreachable until its completion window closes: retried, then FAILED.
	j := backupJob()
	j.CompleteBy = catalog.Ptr(time.Now().Add(time.Second))
	id := createJob(t, s.store, j)
	if err := s.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, s.store, id, catalog.StateFailed, catalog.StateCompleted)
	states := jobStates(t, s.store, id)
	if got.State != catalog.StateFailed || got.Attempt < 1 || !strings.Contains(got.Error, "storage unreachable") {
		t.Fatalf("after the window: %+v", got)
	}
	// Each attempt started (RUNNING); each but the last went back to PENDING. The last
	// either failed or found the window closed when it came.
	if count(states, "RUNNING") != got.Attempt+1 || count(states, "PENDING") != got.Attempt+1 || states[len(states)-1] != "FAILED" {
		t.Fatalf("events %v for %d attempts", states, got.Attempt+1)
	}

	// Unreachable for a while within the window: retried, then COMPLETED.
	j = backupJob()
	j.CompleteBy = catalog.Ptr(time.Now().Add(time.Minute))
	id = createJob(t, s.store, j)
	if err := s.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a retry", func() bool { return getJob(t, s.store, id).Attempt >= 1 })
	f.setUnavailable("main", false)
	got = waitState(t, s.store, id, catalog.StateCompleted, catalog.StateFailed)
	if got.State != catalog.StateCompleted || got.Error != "" || got.PointID == "" {
		t.Fatalf("after the vault came back: %+v", got)
	}
	waitIdle(t, s.store)
}

// testTwoServers enqueues every job twice on each of two servers sharing the catalog:
// each runs exactly once.
func testTwoServers(t *testing.T, f *fixture) {
	ctx := context.Background()
	a := f.newServer(t, "server-a", jobs.QueueOptions{PerVault: 1})
	b := f.newServer(t, "server-b", jobs.QueueOptions{PerVault: 1})
	var ids []string
	for i := 0; i < 2; i++ {
		ids = append(ids, createJob(t, a.store, &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending,
			Resource: "docs", Vault: "main"}))
	}
	for _, v := range []string{"main", "offsite", "main", "offsite"} {
		ids = append(ids, createJob(t, a.store, &catalog.Job{Kind: catalog.JobVerify, State: catalog.StateCreated, Vault: v}))
	}
	for _, id := range ids {
		for _, s := range []*server{a, b, a, b} {
			if err := s.queue.Enqueue(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.start(t)
	b.start(t)
	for _, id := range ids {
		waitState(t, a.store, id, catalog.StateCompleted, catalog.StateFailed)
	}
	waitIdle(t, a.store)
	for _, j := range listJobs(t, a.store, catalog.JobFilter{}) {
		states := jobStates(t, a.store, j.ID)
		if j.State != catalog.StateCompleted || count(states, "RUNNING") != 1 || j.Attempt != 0 {
			t.Fatalf("job %s %s: %s, events %v", j.Kind, j.ID, j.State, states)
		}
	}
	_, ps := f.vaultPoints(t, "main")
	if len(ps) != 2 {
		t.Fatalf("main holds %d points, want 2 (one per backup job)", len(ps))
	}
}

// testKilled kills a server while a backup runs (its database handle vanishes, then its
// goroutines stop) and starts it again: the job is re-queued and completes once.
func testKilled(t *testing.T, f *fixture) {
	ctx := context.Background()
	s1 := f.newServer(t, "srv", jobs.QueueOptions{})
	s1.start(t)
	release := f.block()
	defer release()
	j := backupJob()
	j.Plan, j.Rule = "", "" // no follow-ups
	id := createJob(t, s1.store, j)
	if err := s1.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	<-f.opened // the job is RUNNING, inside the backup
	if got := getJob(t, s1.store, id); got.State != catalog.StateRunning {
		t.Fatalf("job is %s, want RUNNING", got.State)
	}
	s1.store.Close()
	stopCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	s1.queue.Stop(stopCtx) // fails: nothing can be recorded any more
	cancel()
	release()

	s2 := f.newServer(t, "srv", jobs.QueueOptions{})
	if got := getJob(t, s2.store, id); got.State != catalog.StateRunning {
		t.Fatalf("after the kill the job is %s, want RUNNING (nothing recorded)", got.State)
	}
	s2.start(t)
	got := waitState(t, s2.store, id, catalog.StateCompleted, catalog.StateFailed)
	states := strings.Join(jobStates(t, s2.store, id), " ")
	if got.State != catalog.StateCompleted || got.Attempt != 1 || states != "PENDING RUNNING PENDING RUNNING COMPLETED" {
		t.Fatalf("after restart: %+v, events %s", got, states)
	}
	_, ps := f.vaultPoints(t, "main")
	if len(ps) != 1 || ps[0].ID.String() != got.PointID {
		t.Fatalf("main holds %d points, want only %s", len(ps), got.PointID)
	}
}

func testCancel(t *testing.T, f *fixture) {
	ctx := context.Background()
	s := f.newServer(t, "srv", jobs.QueueOptions{})
	s.start(t)

	// A PENDING job is aborted at once and never runs.
	id := createJob(t, s.store, backupJob())
	if err := s.queue.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(jobStates(t, s.store, id), " "); got != "PENDING ABORTED" {
		t.Fatalf("canceled pending job: %s", got)
	}

	// A RUNNING job is interrupted and ends ABORTED.
	release := f.block()
	defer release()
	id = createJob(t, s.store, backupJob())
	if err := s.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	<-f.opened
	if err := s.queue.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, s.store, id, catalog.StateAborted, catalog.StateFailed, catalog.StateCompleted)
	if got.State != catalog.StateAborted || got.Error != "canceled by request" {
		t.Fatalf("canceled running job: %+v", got)
	}
	if err := s.queue.Cancel(ctx, id); !errs.Is(err, errs.Conflict) {
		t.Fatalf("cancel of a finished job: %v", err)
	}
	release()

	// Canceled from another server: through River, the running server notices.
	other := f.newServer(t, "other", jobs.QueueOptions{})
	defer f.block()()
	id = createJob(t, s.store, backupJob())
	if err := s.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	<-f.opened
	if err := other.queue.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	got = waitState(t, s.store, id, catalog.StateAborted, catalog.StateFailed, catalog.StateCompleted)
	if got.State != catalog.StateAborted {
		t.Fatalf("job canceled from another server: %+v", got)
	}
	if err := s.queue.Cancel(ctx, "01NOSUCHJOB0000000000000000"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("cancel of an unknown job: %v", err)
	}
}
