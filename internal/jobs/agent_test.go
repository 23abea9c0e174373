package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// TestAgentJobs: jobs of a resource on another host are left PENDING by the server's
// workers and run by that host's agent: claimed with the vault's secrets, run with
// RunAgentWork, reported with heartbeats and FinishAgentJob, which records the point and
// the rule's copies exactly as a server-run backup does; a canceled or abandoned agent job
// is taken back.
func TestAgentJobs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	f.agentLease = 300 * time.Millisecond
	p := f.cfg.Plans["gold"]
	p.Resources = append(p.Resources, "far")
	f.cfg.Plans["gold"] = p
	s := f.newServer(t, "srv", jobs.QueueOptions{})
	s.start(t)
	agentOpts := vault.OpenOptions{Host: "agent1"}
	beat := func(id string) func(context.Context, jobs.AgentProgress) error {
		return func(ctx context.Context, p jobs.AgentProgress) error {
			return s.queue.AgentHeartbeat(ctx, "agent1", id, p)
		}
	}

	id := createJob(t, s.store, &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "far",
		Vault: "main", Plan: "gold", Rule: "daily", Host: "agent1"})
	if err := s.queue.Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server's worker sees it and leaves it
	if j := getJob(t, s.store, id); j.State != catalog.StatePending {
		t.Fatalf("the server ran an agent's job: %+v", j)
	}
	if _, err := s.queue.ClaimAgentJob(ctx, "srv"); !errs.Is(err, errs.Invalid) {
		t.Fatalf("claim as the server's own host: %v", err)
	}
	if w, err := s.queue.ClaimAgentJob(ctx, "agent2"); w != nil || err != nil {
		t.Fatalf("claim for a host with no jobs: %+v %v", w, err)
	}
	w, err := s.queue.ClaimAgentJob(ctx, "agent1")
	if err != nil || w == nil || w.Job.ID != id || w.Vault.Password != "password of main" || w.Tags["plan"] != "gold" ||
		w.Resource.Paths[0] != f.src {
		t.Fatalf("claim: %+v %v", w, err)
	}
	if j := getJob(t, s.store, id); j.State != catalog.StateRunning || j.Host != "agent1" || j.HeartbeatAt == nil {
		t.Fatalf("claimed job %+v", j)
	}
	res := jobs.RunAgentWork(ctx, w, agentOpts, beat(id))
	if res.Error != "" || res.Point == nil || res.Point.Host != "agent1" || res.Counts.Files != 2 {
		t.Fatalf("agent run: %+v", res)
	}
	if err := s.queue.FinishAgentJob(ctx, "agent2", id, res); !errs.Is(err, errs.Conflict) {
		t.Fatalf("finish by another agent: %v", err)
	}
	if err := s.queue.FinishAgentJob(ctx, "agent1", id, res); err != nil {
		t.Fatal(err)
	}
	j := getJob(t, s.store, id)
	if j.State != catalog.StateCompleted || j.PointID != res.Point.ID.String() {
		t.Fatalf("finished job %+v", j)
	}
	// The follow-ups run on the server: the copy to the other site and retention.
	waitFor(t, "the copy", func() bool {
		cs := listJobs(t, s.store, catalog.JobFilter{Kind: catalog.Ptr(catalog.JobCopy), State: catalog.Ptr(catalog.StateCompleted)})
		return len(cs) == 1
	})
	if ps := listPoints(t, s.store, catalog.PointFilter{Resource: catalog.Ptr("far")}); len(ps) != 2 {
		t.Fatalf("points of far: %d, want the backup and its copy", len(ps))
	}

	// A restore on the agent's host.
	target := filepath.Join(f.dir, "restored")
	rid := createJob(t, s.store, &catalog.Job{Kind: catalog.JobRestore, State: catalog.StatePending, Resource: "far",
		Vault: "main", Host: "agent1", Params: []byte(`{"point":"latest","target":"` + target + `"}`)})
	w, err = s.queue.ClaimAgentJob(ctx, "agent1")
	if err != nil || w == nil || w.Job.ID != rid {
		t.Fatalf("claim restore: %+v %v", w, err)
	}
	res = jobs.RunAgentWork(ctx, w, agentOpts, beat(rid))
	if err := s.queue.FinishAgentJob(ctx, "agent1", rid, res); err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, s.store, rid); j.State != catalog.StateCompleted || j.CreatedResource != target {
		t.Fatalf("restore job %+v", j)
	}
	if b, err := os.ReadFile(filepath.Join(target, "sub", "b.txt")); err != nil || string(b) != "bravo" {
		t.Fatalf("restored file: %q %v", b, err)
	}

	// A canceled agent job: the next heartbeat tells the agent to stop, its end is refused.
	cid := createJob(t, s.store, &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "far", Vault: "main", Host: "agent1"})
	if w, err = s.queue.ClaimAgentJob(ctx, "agent1"); err != nil || w == nil || w.Job.ID != cid {
		t.Fatalf("claim: %+v %v", w, err)
	}
	if err := s.queue.Cancel(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if err := s.queue.AgentHeartbeat(ctx, "agent1", cid, jobs.AgentProgress{}); !errs.Is(err, errs.Conflict) {
		t.Fatalf("heartbeat of a canceled job: %v", err)
	}
	if j := getJob(t, s.store, cid); j.State != catalog.StateAborted {
		t.Fatalf("canceled agent job %+v", j)
	}

	// An abandoned agent job: a backup is PENDING again after the lease, a restore FAILS.
	aid := createJob(t, s.store, &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "far", Vault: "main", Host: "agent1"})
	rid2 := createJob(t, s.store, &catalog.Job{Kind: catalog.JobRestore, State: catalog.StatePending, Resource: "far",
		Vault: "main", Host: "agent1", Params: []byte(`{"point":"latest","target":"` + target + `2"}`)})
	for range 2 {
		if w, err := s.queue.ClaimAgentJob(ctx, "agent1"); err != nil || w == nil {
			t.Fatalf("claim: %+v %v", w, err)
		}
	}
	if ids, err := s.queue.ReclaimAgentJobs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("reclaim within the lease: %v %v", ids, err)
	}
	time.Sleep(400 * time.Millisecond)
	ids, err := s.queue.ReclaimAgentJobs(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("reclaim after the lease: %v %v", ids, err)
	}
	if j := getJob(t, s.store, aid); j.State != catalog.StatePending || j.Attempt != 1 || !strings.Contains(j.Error, "agent on agent1 stopped reporting") {
		t.Fatalf("abandoned backup %+v", j)
	}
	if j := getJob(t, s.store, rid2); j.State != catalog.StateFailed {
		t.Fatalf("abandoned restore %+v", j)
	}
	if err := s.queue.AgentHeartbeat(ctx, "agent1", aid, jobs.AgentProgress{}); !errs.Is(err, errs.Conflict) {
		t.Fatalf("heartbeat after being taken back: %v", err)
	}
	// Claimed again, it completes.
	if w, err = s.queue.ClaimAgentJob(ctx, "agent1"); err != nil || w == nil || w.Job.ID != aid {
		t.Fatalf("claim again: %+v %v", w, err)
	}
	if err := s.queue.FinishAgentJob(ctx, "agent1", aid, jobs.RunAgentWork(ctx, w, agentOpts, beat(aid))); err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, s.store, aid); j.State != catalog.StateCompleted {
		t.Fatalf("re-run backup %+v", j)
	}
}
