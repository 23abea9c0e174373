package jobs

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Agents: a resource whose Host is not the server's is backed up and restored by
// `rewind agent --host HOST` running there. The agent claims the host's PENDING backup and
// restore jobs through the API, runs the vault work itself (RunAgentWork) and reports its
// progress (a heartbeat) and its end; the server does everything that touches the catalog
// (the claim, the point, follow-up copies and retention, events), so the two paths end a
// job the same way. A RUNNING agent job whose heartbeat is older than AgentLease is taken
// back: a backup becomes PENDING again (an agent re-runs it, deduplicated), a restore FAILS.

// DefaultAgentLease is how long a RUNNING agent job lives without a heartbeat.
const DefaultAgentLease = 60 * time.Second

// AgentWork is what the server hands an agent with a job it claimed: the job, what to back
// up or restore, and how to reach the vault (its URL and secrets: the agent writes
// encrypted data there with the vault's key, as any backup client must).
type AgentWork struct {
	Job          *catalog.Job      `json:"job"`
	Resource     AgentResource     `json:"resource"`
	Vault        AgentVault        `json:"vault"`
	Tags         map[string]string `json:"tags,omitempty"` // backups: the point's tags (resource's and rule's)
	LeaseSeconds int               `json:"leaseSeconds"`   // heartbeat at least three times per lease
}

// AgentResource is the part of a resource's configuration an agent needs.
type AgentResource struct {
	Name          string   `json:"name"`
	Kind          string   `json:"kind"`
	Paths         []string `json:"paths,omitempty"`
	Excludes      []string `json:"excludes,omitempty"`
	OneFileSystem bool     `json:"oneFileSystem,omitempty"`
	URL           string   `json:"url,omitempty"`  // postgres, redis: the connection URL (with its credentials)
	Path          string   `json:"path,omitempty"` // sqlite: the database file
}

// AgentVault locates a vault and carries its secrets.
type AgentVault struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Password  string `json:"password"`
	AccessKey string `json:"accessKey,omitempty"`
	SecretKey string `json:"secretKey,omitempty"`
	Region    string `json:"region,omitempty"`
}

// AgentProgress is an agent's heartbeat with the job's counters so far.
type AgentProgress struct {
	BytesDone  int64 `json:"bytesDone"`
	BytesTotal int64 `json:"bytesTotal"`
	FilesDone  int64 `json:"filesDone"`
}

// AgentResult is how an agent's run of a job ended. Error is empty on success; Retryable
// says whether the failure may pass (storage unreachable), so the job is run again.
type AgentResult struct {
	Error     string       `json:"error,omitempty"`
	Retryable bool         `json:"retryable,omitempty"`
	Point     *vault.Point `json:"point,omitempty"` // backups: the point saved; restores: the point restored
	Counts    Counts       `json:"counts"`
}

// isAgentJob reports whether j is run by an agent rather than by this server.
func (r *Runner) isAgentJob(j *catalog.Job) bool { return r.hostOf(j) != r.env.Host }

// ClaimAgentJob claims the oldest PENDING backup or restore job of host's resources for the
// agent on host and returns its work, or nil when there is none. A job whose start window
// closed is EXPIRED instead. Errors: errs.Invalid for an empty host or the server's own;
// the store's errors; a job that cannot be prepared (bad params, unknown resource or vault,
// unreadable password file) is FAILED with that error and the next one is tried.
func (q *Queue) ClaimAgentJob(ctx context.Context, host string) (*AgentWork, error) {
	const op = "jobs.ClaimAgentJob"
	r := q.runner
	if host == "" || host == r.env.Host {
		return nil, errs.Errorf(op, errs.Invalid, "host %q is not an agent host (this server is %q)", host, r.env.Host).
			WithHint("give the host name the resources name in their host field")
	}
	var pending []*catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		pending, err = tx.ListJobs(ctx, catalog.JobFilter{States: []catalog.State{catalog.StateCreated, catalog.StatePending}})
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(pending, func(i, k int) bool { return pending[i].ID < pending[k].ID })
	for _, j := range pending {
		if !r.isAgentJob(j) || r.hostOf(j) != host {
			continue
		}
		job, out, err := r.claim(ctx, j.ID, q.admit, true)
		if errs.Is(err, errs.Conflict) {
			continue // another agent or server took it first
		}
		if err != nil {
			return nil, err
		}
		if out != outClaimed {
			continue // expired, ended, or no free slot
		}
		w, err := r.agentWork(job)
		if err != nil {
			if _, ferr := r.finish(ctx, ctx, job, nil, err, 0); ferr != nil {
				return nil, ferr
			}
			continue
		}
		return w, nil
	}
	return nil, nil
}

func (r *Runner) agentWork(j *catalog.Job) (*AgentWork, error) {
	w := &AgentWork{Job: j, LeaseSeconds: int(r.agentLease() / time.Second)}
	res, err := r.resource(j)
	if err != nil {
		return nil, err
	}
	w.Resource = AgentResource{Name: res.Name, Kind: string(res.Kind), Paths: res.Paths, Excludes: res.Excludes,
		OneFileSystem: res.OneFileSystem, URL: res.URL, Path: res.Path}
	vaultName := j.Vault
	if j.Kind == catalog.JobBackup {
		plan, err := r.backupPlan(j)
		if err != nil {
			return nil, err
		}
		vaultName, w.Tags = plan.vault, plan.tags
	} else if params, err := restoreParams(j); err != nil {
		return nil, err
	} else if isServerURL(params.Target) {
		// The agent would read the password file on its host, where the server cannot
		// check what it is.
		return nil, errs.Errorf("jobs.ClaimAgentJob", errs.Invalid, "job %s restores into a database server; an agent restores only into files on its host", j.ID).
			WithHint("restore into the server URL with 'rewind restore' on a host that can reach it, or into a directory")
	}
	if r.env.VaultSecrets == nil {
		return nil, errs.Errorf("jobs.ClaimAgentJob", errs.Internal, "this server cannot hand vault secrets to agents")
	}
	if w.Vault, err = r.env.VaultSecrets(vaultName); err != nil {
		return nil, err
	}
	return w, nil
}

func (r *Runner) agentLease() time.Duration {
	if r.opts.AgentLease > 0 {
		return r.opts.AgentLease
	}
	return DefaultAgentLease
}

// agentJob returns job id if host's agent runs it (RUNNING on host).
func (r *Runner) agentJob(ctx context.Context, tx catalog.Tx, op, host, id string) (*catalog.Job, error) {
	j, err := tx.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State != catalog.StateRunning || j.Host != host || j.HeartbeatAt == nil {
		msg := fmt.Sprintf("job %s is %s", id, j.State)
		if j.State == catalog.StateRunning {
			msg = fmt.Sprintf("job %s runs on %s, not on agent %s", id, j.Host, host)
		}
		return nil, errs.Errorf(op, errs.Conflict, "%s", msg).WithHint("stop working on it: its result would not be recorded")
	}
	return j, nil
}

// AgentHeartbeat records that host's agent still runs job id, with its counters.
// errs.Conflict when the job is no longer the agent's to run (canceled, taken back after a
// missed heartbeat, ended): the agent must stop working on it.
func (q *Queue) AgentHeartbeat(ctx context.Context, host, id string, p AgentProgress) error {
	const op = "jobs.AgentHeartbeat"
	if p.BytesDone < 0 || p.BytesTotal < 0 || p.FilesDone < 0 {
		return errs.Errorf(op, errs.Invalid, "negative counters")
	}
	return q.store.Tx(ctx, func(tx catalog.Tx) error {
		if _, err := q.runner.agentJob(ctx, tx, op, host, id); err != nil {
			return err
		}
		now := tx.Now()
		_, err := tx.UpdateJob(ctx, id, catalog.JobUpdate{
			IfState: catalog.Ptr(catalog.StateRunning), HeartbeatAt: &now,
			BytesDone: &p.BytesDone, BytesTotal: &p.BytesTotal, FilesDone: &p.FilesDone,
		})
		return err
	})
}

// FinishAgentJob ends job id as host's agent reports: the point and follow-up jobs of a
// backup, the created resource of a restore, or the failure (a retryable one puts the job
// back to PENDING while its window allows). errs.Conflict as AgentHeartbeat; errs.Invalid
// for a result that does not fit the job (a backup without its point, a point of another
// resource).
func (q *Queue) FinishAgentJob(ctx context.Context, host, id string, res AgentResult) error {
	const op = "jobs.FinishAgentJob"
	r := q.runner
	var job *catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		job, err = r.agentJob(ctx, tx, op, host, id)
		return err
	})
	if err != nil {
		return err
	}
	var fin *finish
	var runErr error
	switch {
	case res.Error != "":
		kind := errs.Internal
		if res.Retryable {
			kind = errs.Unavailable
		}
		runErr = errs.Errorf(op, kind, "agent %s: %s", host, res.Error)
	case res.Point == nil || res.Point.Resource != job.Resource:
		return errs.Errorf(op, errs.Invalid, "job %s: the result carries no point of resource %s", id, job.Resource)
	case job.Kind == catalog.JobBackup:
		plan, err := r.backupPlan(job)
		if err != nil {
			runErr = err
			break
		}
		want, _ := pointKindOf(plan.res.Kind)
		if res.Point.Kind != want || res.Point.Host != host {
			return errs.Errorf(op, errs.Invalid, "job %s: the point is of kind %s from host %s, not %s from %s", id, res.Point.Kind, res.Point.Host, want, host)
		}
		fin = r.backupFinish(job, plan, res.Point, res.Counts)
	case job.Kind == catalog.JobRestore:
		params, err := restoreParams(job)
		if err != nil {
			runErr = err
			break
		}
		fin = r.restoreFinish(res.Point.ID.String(), res.Point.Resource, res.Point.Tags, params.Target, res.Counts)
	default:
		return errs.Errorf(op, errs.Invalid, "job %s is a %s job; agents run backups and restores", id, job.Kind)
	}
	out, err := r.finish(ctx, ctx, job, fin, runErr, 0)
	if err != nil {
		return err
	}
	wctx := context.WithoutCancel(ctx)
	for _, f := range out.followUps {
		if err := q.Enqueue(wctx, f); err != nil {
			q.opts.Logger.Warn("jobs: queuing follow-up jobs", "job", id, "error", err)
		}
	}
	return nil
}

// ReclaimAgentJobs takes back the RUNNING agent jobs whose agent has not reported for
// longer than the lease: a backup becomes PENDING again (the next claim re-runs it; dedup
// keeps what the lost run uploaded), a restore FAILS (the target holds part of the data).
// It returns the IDs it took back.
func (q *Queue) ReclaimAgentJobs(ctx context.Context) ([]string, error) {
	r := q.runner
	var running []*catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		running, err = tx.ListJobs(ctx, catalog.JobFilter{State: catalog.Ptr(catalog.StateRunning)})
		return err
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	now := r.env.Now()
	for _, j := range running {
		if j.HeartbeatAt == nil || now.Sub(*j.HeartbeatAt) <= r.agentLease() {
			continue
		}
		msg := fmt.Sprintf("the agent on %s stopped reporting (last heartbeat %s)", j.Host, j.HeartbeatAt.Format(time.RFC3339))
		u := catalog.JobUpdate{IfState: catalog.Ptr(catalog.StateRunning)}
		if idempotent(j.Kind) {
			u.State, u.Attempt, u.Error = catalog.Ptr(catalog.StatePending), catalog.Ptr(j.Attempt+1), catalog.Ptr(msg+"; it will run again")
		} else {
			u.State, u.Error = catalog.Ptr(catalog.StateFailed), &msg
		}
		err := q.store.Tx(ctx, func(tx catalog.Tx) error {
			cur, err := tx.GetJob(ctx, j.ID)
			if err != nil {
				return err
			}
			if cur.HeartbeatAt == nil || !cur.HeartbeatAt.Equal(*j.HeartbeatAt) {
				return errs.Errorf("jobs.ReclaimAgentJobs", errs.Conflict, "job %s reported meanwhile", j.ID)
			}
			_, err = catalog.UpdateJobWithEvent(ctx, tx, j.ID, u, r.jobEvent)
			return err
		})
		if errs.Is(err, errs.Conflict) {
			continue // it reported or ended meanwhile
		}
		if err != nil {
			return ids, err
		}
		ids = append(ids, j.ID)
		r.breakAgentLocks(ctx, j)
	}
	return ids, nil
}

// breakAgentLocks removes the locks the silent agent of j left in j's vault, so that a
// prune does not wait out their lease (30 minutes); were the agent alive after all, it
// would find its lease gone before committing and write nothing. A failure only delays
// prunes until the locks go stale, and is logged.
func (r *Runner) breakAgentLocks(ctx context.Context, j *catalog.Job) {
	name := j.Vault
	if j.Kind == catalog.JobBackup {
		if plan, err := r.backupPlan(j); err == nil {
			name = plan.vault
		}
	}
	if name == "" {
		return
	}
	repo, err := r.env.OpenVault(ctx, name)
	if err == nil {
		_, err = repo.BreakLocks(ctx, j.Host)
	}
	if err != nil {
		r.log().Warn("removing the locks of a silent agent", "vault", name, "host", j.Host, "err", err)
	}
}
