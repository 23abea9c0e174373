package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/location"
	"github.com/rewind-dr/rewind/internal/vault/backend/retry"
)

// errTakenBack is the cause of an agent's work context when the server no longer lets it
// run the job (canceled, or taken back after missed heartbeats).
var errTakenBack = errors.New("the server took the job back")

// RunAgentWork runs a claimed job's vault work on the agent's host: it opens the vault
// with the secrets in w, takes a shared lock, backs the resource up (saving the point) or
// restores the point into the target, and returns the result to report with
// FinishAgentJob. While it runs, beat is called every third of the lease with the
// counters so far; when beat returns errs.Conflict (the server took the job back) the work
// stops and RunAgentWork returns a result the server will refuse anyway. opts sets the
// host recorded in points and locks, and the vault's runtime options.
func RunAgentWork(ctx context.Context, w *AgentWork, opts vault.OpenOptions, beat func(context.Context, AgentProgress) error) AgentResult {
	if w == nil || w.Job == nil {
		return AgentResult{Error: "no job in the work"}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		prog AgentProgress
	)
	set := func(s files.Status) {
		mu.Lock()
		prog = AgentProgress{BytesDone: int64(s.Bytes), BytesTotal: int64(s.BytesTotal), FilesDone: int64(s.Files)}
		mu.Unlock()
	}
	every := time.Duration(w.LeaseSeconds) * time.Second / 3
	if every <= 0 {
		every = DefaultAgentLease / 3
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			mu.Lock()
			p := prog
			mu.Unlock()
			if err := beat(wctx, p); errs.Is(err, errs.Conflict) {
				cancel(errTakenBack)
				return
			}
			// Other failures (server unreachable for a moment) are retried at the next
			// tick; the lease allows three misses.
		}
	}()
	res := runAgentWork(wctx, w, opts, set)
	close(done)
	wg.Wait()
	if errors.Is(context.Cause(wctx), errTakenBack) && res.Error == "" {
		res = AgentResult{Error: errTakenBack.Error()}
	}
	return res
}

func runAgentWork(ctx context.Context, w *AgentWork, opts vault.OpenOptions, progress files.Progress) AgentResult {
	fail := func(err error) AgentResult {
		return AgentResult{Error: errorText(err), Retryable: errs.Is(err, errs.Unavailable)}
	}
	be, err := location.Open(ctx, w.Vault.URL, location.Credentials{AccessKey: w.Vault.AccessKey, SecretKey: w.Vault.SecretKey, Region: w.Vault.Region})
	if err != nil {
		return fail(err)
	}
	be = retry.New(be, retry.Policy{})
	repo, err := vault.Open(ctx, be, w.Vault.Password, opts)
	if err != nil {
		be.Close()
		return fail(err)
	}
	defer repo.Close()
	lock, err := repo.Lock(ctx, false)
	if err != nil {
		return fail(err)
	}
	defer lock.Unlock(context.WithoutCancel(ctx))
	switch w.Job.Kind {
	case catalog.JobBackup:
		res := config.Resource{Name: w.Resource.Name, Kind: config.Kind(w.Resource.Kind), Paths: w.Resource.Paths,
			Excludes: w.Resource.Excludes, OneFileSystem: w.Resource.OneFileSystem, URL: w.Resource.URL, Path: w.Resource.Path}
		vp, c, err := backupResource(ctx, repo, res, w.Tags, opts.Host, time.Now, progress)
		if err != nil {
			return fail(err)
		}
		return AgentResult{Point: vp, Counts: c}
	case catalog.JobRestore:
		params, err := restoreParams(w.Job)
		if err != nil {
			return fail(err)
		}
		p, c, err := restoreResource(ctx, repo, w.Job.Resource, params, progress)
		if err != nil {
			return fail(err)
		}
		return AgentResult{Point: p, Counts: c}
	}
	return fail(errs.Errorf("jobs.agent", errs.Invalid, "job %s is a %s job; agents run backups and restores", w.Job.ID, w.Job.Kind))
}
