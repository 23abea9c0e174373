package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Env is what a Runner works with.
type Env struct {
	Store  catalog.Store
	Config *config.Config
	Site   string // this server's site, stamped on every event ("" when none)
	Host   string // this server's host name: runs the resources whose Host is empty
	// OpenVault opens a configured vault with its password file. It must cache and reuse
	// open repositories and be safe for concurrent use (Vaults.Open is).
	OpenVault func(ctx context.Context, name string) (*vault.Repository, error)
	// VaultSecrets returns a configured vault's location and secrets, handed to the agent
	// that runs a job of a resource on another host (nil: no agents).
	VaultSecrets func(name string) (AgentVault, error)
	Now          func() time.Time // time.Now when nil
	// Log receives what the runner handles without failing a job (nil: nothing logged).
	Log *slog.Logger
}

// Defaults of RunnerOptions.
const (
	DefaultProgressInterval = 2 * time.Second
	DefaultMaxAttempts      = 10
)

// RunnerOptions tune a Runner; zero fields take the defaults above.
type RunnerOptions struct {
	// ProgressInterval is how often a running job's bytes and files are written to the
	// catalog (progress is never written more often).
	ProgressInterval time.Duration
	// MaxAttempts bounds the attempts of a job that has no CompleteBy and keeps failing
	// with a retryable (errs.Unavailable) error. A job with a CompleteBy is retried until
	// then instead.
	MaxAttempts int
	// AgentLease is how long a job run by an agent lives without a heartbeat
	// (DefaultAgentLease when zero).
	AgentLease time.Duration
}

// ErrCanceled is the cause a canceled job's context carries (Queue.Cancel): the Runner then
// ends the job ABORTED. Any other cancellation (a server shutting down) interrupts the job
// without aborting it.
var ErrCanceled = errors.New("canceled by request")

// interruptedMsg is the error of a job whose server stopped while it ran.
const interruptedMsg = "interrupted: the server stopped while the job ran"

// Runner executes catalog jobs. Safe for concurrent use: each Run handles one job.
type Runner struct {
	env  Env
	opts RunnerOptions
}

// NewRunner returns a Runner over env. errs.Invalid when env lacks its store, config or
// vault opener.
func NewRunner(env Env, opts RunnerOptions) (*Runner, error) {
	const op = "jobs.NewRunner"
	if env.Store == nil || env.Config == nil || env.OpenVault == nil {
		return nil, errs.Errorf(op, errs.Invalid, "the runner needs a catalog store, the configuration and a vault opener")
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	return &Runner{env: env, opts: opts}, nil
}

// outcome is what one run of a job led to.
type outcome int

const (
	outDone    outcome = iota // terminal (or already terminal)
	outRetry                  // back to PENDING after a retryable failure; run it again later
	outBusy                   // not claimed: no free slot; still PENDING
	outRequeue                // back to PENDING after an interruption; run it again now
	outClaimed                // claim only: the job is RUNNING and this worker runs it
)

type result struct {
	out       outcome
	job       *catalog.Job // the job as last written
	followUps []string     // jobs created by this one (copies, retention), PENDING
}

// admitFunc decides, inside the claiming transaction, whether job may start now; it returns
// errBusy when a concurrency limit is reached.
type admitFunc func(ctx context.Context, tx catalog.Tx, j *catalog.Job, host string) error

var errBusy = errors.New("no free slot")

// Run executes the catalog job id to its end. It claims the job (CREATED or PENDING to
// RUNNING, conditional on the state read, so that of two workers exactly one runs it); a job
// already in a terminal state is left alone and Run returns nil. The job ends COMPLETED,
// PARTIAL (some items failed), FAILED (with the error text), ABORTED (ctx canceled with
// ErrCanceled, or its completion window closed) or EXPIRED (its start window passed), each
// change with its event in the same transaction. A retryable failure (errs.Unavailable)
// puts the job back to PENDING with Attempt+1 and returns an errs.Unavailable error: run it
// again later. An interruption (ctx canceled otherwise) re-queues an idempotent job as
// PENDING and fails a restore. Jobs this one creates (copies, retention) are left PENDING.
//
// Run returns an error only when the job did not end: errs.Conflict when another worker
// holds it (RUNNING), errs.NotFound for an unknown job, errs.Unavailable as above or when
// the catalog cannot be reached. It does not retry by itself.
func (r *Runner) Run(ctx context.Context, id string) error {
	res, err := r.run(ctx, id, nil, 0)
	if err != nil {
		return err
	}
	switch res.out {
	case outRetry, outRequeue:
		return errs.Errorf("jobs.Run", errs.Unavailable, "job %s: %s", id, res.job.Error).
			WithHint(fmt.Sprintf("the job is PENDING again (attempt %d); run it again later", res.job.Attempt))
	}
	return nil
}

// log is Env.Log, or a logger that discards.
func (r *Runner) log() *slog.Logger {
	if r.env.Log != nil {
		return r.env.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) jobEvent(j *catalog.Job) *catalog.Event { return catalog.JobStateEvent(j, r.env.Site) }

// hostOf returns the host that runs j: for a backup or restore its resource's host, else
// this server (copies, checks and prunes touch only vaults).
func (r *Runner) hostOf(j *catalog.Job) string {
	if j.Kind != catalog.JobBackup && j.Kind != catalog.JobRestore {
		return r.env.Host
	}
	if res, ok := r.env.Config.Resources[j.Resource]; ok && res.Host != "" {
		return res.Host
	}
	return r.env.Host
}

// claim moves id to RUNNING. It returns the claimed job, or the job and outDone when it was
// terminal or expired, or outBusy when admit refused. forAgent starts the job's heartbeat
// (an agent runs it).
func (r *Runner) claim(ctx context.Context, id string, admit admitFunc, forAgent bool) (*catalog.Job, outcome, error) {
	var (
		job *catalog.Job
		out outcome
	)
	err := r.env.Store.Tx(ctx, func(tx catalog.Tx) error {
		j, err := tx.GetJob(ctx, id)
		if err != nil {
			return err
		}
		job, out = j, outDone
		switch {
		case j.State.Terminal():
			return nil
		case j.State == catalog.StateRunning:
			return errs.Errorf("jobs.Run", errs.Conflict, "job %s is already RUNNING on %s", j.ID, j.Host).
				WithHint("wait for it to end, or cancel it")
		}
		if j.StartBy != nil && tx.Now().After(*j.StartBy) {
			job, err = catalog.UpdateJobWithEvent(ctx, tx, id, catalog.JobUpdate{
				State: catalog.Ptr(catalog.StateExpired),
				Error: catalog.Ptr(fmt.Sprintf("its start window closed at %s before a worker took it", j.StartBy.Format(time.RFC3339))),
			}, r.jobEvent)
			return err
		}
		host := r.hostOf(j)
		if admit != nil {
			if err := admit(ctx, tx, j, host); err != nil {
				if errors.Is(err, errBusy) {
					out = outBusy
					return nil
				}
				return err
			}
		}
		if j.State == catalog.StateCreated {
			if j, err = catalog.UpdateJobWithEvent(ctx, tx, id, catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)}, r.jobEvent); err != nil {
				return err
			}
		}
		lastErr := j.Error
		u := catalog.JobUpdate{
			IfState: catalog.Ptr(catalog.StatePending), State: catalog.Ptr(catalog.StateRunning),
			Host: &host, Error: catalog.Ptr(""),
		}
		if forAgent {
			now := tx.Now()
			u.HeartbeatAt = &now
		}
		if j.StartedAt == nil && j.CompleteBy == nil {
			// A plan rule's completion window counts from the job's first start, as in
			// AWS Backup; retries keep that deadline.
			if rule, _ := r.rule(j); rule != nil {
				if d, ok := rule.Window.CompletionDeadline(tx.Now()); ok {
					u.CompleteBy = &d
				}
			}
		}
		job, err = catalog.UpdateJobWithEvent(ctx, tx, id, u, r.jobEvent)
		if err != nil {
			return err
		}
		if j.CompleteBy != nil && !tx.Now().Before(*j.CompleteBy) {
			// A retry that came too late (or a job queued past its window): it fails at
			// once, keeping the failure that made it wait.
			msg := fmt.Sprintf("its completion window closed at %s before attempt %d could run", j.CompleteBy.Format(time.RFC3339), j.Attempt+1)
			if lastErr != "" {
				msg += "; the last failure: " + lastErr
			}
			job, err = catalog.UpdateJobWithEvent(ctx, tx, id, catalog.JobUpdate{
				State: catalog.Ptr(catalog.StateFailed), Error: &msg,
			}, r.jobEvent)
			return err
		}
		out = outClaimed
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return job, out, nil
}

// run runs job id; retryDelay is how long after a retryable failure the next attempt
// would start, so that no retry is promised past the job's completion window.
func (r *Runner) run(ctx context.Context, id string, admit admitFunc, retryDelay time.Duration) (*result, error) {
	job, out, err := r.claim(ctx, id, admit, false)
	if err != nil {
		return nil, err
	}
	if out != outClaimed {
		return &result{out: out, job: job}, nil
	}
	jctx, cancel := ctx, context.CancelFunc(func() {})
	if job.CompleteBy != nil {
		jctx, cancel = context.WithDeadline(ctx, *job.CompleteBy)
	}
	defer cancel()
	prog := r.startProgress(ctx, job.ID)
	fin, runErr := r.execute(jctx, job, prog)
	prog.stop()
	return r.finish(ctx, jctx, job, fin, runErr, retryDelay)
}

// finish is what execute hands back: how a job that did not fail ends.
type finish struct {
	state     catalog.State // COMPLETED or PARTIAL; empty when the job wrote its end itself
	warning   string        // PARTIAL: what failed
	update    catalog.JobUpdate
	extra     func(ctx context.Context, tx catalog.Tx, j *catalog.Job) error // more writes in the closing Tx
	event     func(*catalog.Job) *catalog.Event                              // the job's event; jobEvent when nil
	followUps []string
}

// finish ends a job after execute: success, retry, abort, interruption or failure.
func (r *Runner) finish(ctx, jctx context.Context, job *catalog.Job, fin *finish, runErr error, retryDelay time.Duration) (*result, error) {
	wctx := context.WithoutCancel(ctx) // the end is written even when ctx is canceled
	res := &result{}
	var u catalog.JobUpdate
	mk := r.jobEvent
	var extra func(context.Context, catalog.Tx, *catalog.Job) error
	switch {
	case runErr == nil:
		u = fin.update
		u.State = catalog.Ptr(fin.state)
		if fin.warning != "" {
			u.Error = &fin.warning
		}
		if fin.event != nil {
			mk = fin.event
		}
		extra = fin.extra
		res.out = outDone
	case errors.Is(context.Cause(jctx), ErrCanceled) || errors.Is(context.Cause(jctx), rivertype.ErrJobCancelledRemotely):
		u.State, u.Error = catalog.Ptr(catalog.StateAborted), catalog.Ptr("canceled by request")
		res.out = outDone
	case errors.Is(jctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		u.State = catalog.Ptr(catalog.StateAborted)
		u.Error = catalog.Ptr(fmt.Sprintf("its completion window closed at %s: %v", job.CompleteBy.Format(time.RFC3339), runErr))
		res.out = outDone
	case ctx.Err() != nil:
		// Not a cancel request: the server is stopping. An idempotent job runs again.
		if idempotent(job.Kind) {
			u.State, u.Attempt = catalog.Ptr(catalog.StatePending), catalog.Ptr(job.Attempt+1)
			u.Error = catalog.Ptr(interruptedMsg + "; it will run again")
			res.out = outRequeue
		} else {
			u.State, u.Error = catalog.Ptr(catalog.StateFailed), catalog.Ptr(interruptedMsg)
			res.out = outDone
		}
	case errs.Is(runErr, errs.Unavailable) && r.mayRetry(job, retryDelay):
		u.State, u.Attempt = catalog.Ptr(catalog.StatePending), catalog.Ptr(job.Attempt+1)
		u.Error = catalog.Ptr(fmt.Sprintf("attempt %d: %v", job.Attempt+1, runErr))
		res.out = outRetry
	default:
		u.State, u.Error = catalog.Ptr(catalog.StateFailed), catalog.Ptr(errorText(runErr))
		res.out = outDone
	}
	u.IfState = catalog.Ptr(catalog.StateRunning)
	err := r.env.Store.Tx(wctx, func(tx catalog.Tx) error {
		if extra != nil {
			if err := extra(wctx, tx, job); err != nil {
				return err
			}
		}
		j, err := catalog.UpdateJobWithEvent(wctx, tx, job.ID, u, mk)
		res.job = j
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("job %s: recording its end (%s): %w", job.ID, *u.State, err)
	}
	if runErr == nil {
		res.followUps = fin.followUps // set by extra inside the transaction
	}
	return res, nil
}

// mayRetry reports whether a job that failed with a retryable error gets another attempt,
// which would start after delay.
func (r *Runner) mayRetry(j *catalog.Job, delay time.Duration) bool {
	if j.CompleteBy != nil {
		return r.env.Now().Add(delay).Before(*j.CompleteBy)
	}
	return j.Attempt+1 < r.opts.MaxAttempts
}

// idempotent reports whether a job of kind k may simply run again after an interruption:
// a backup deduplicates against what the interrupted attempt stored, a copy skips points
// the destination has, verify only reads and an interrupted prune is designed to be run
// again. A restore is not: the target holds part of the data and a person should look.
func idempotent(k catalog.JobKind) bool { return k != catalog.JobRestore }

func errorText(err error) string {
	s := err.Error()
	if h := errs.HintOf(err); h != "" {
		s += " (" + h + ")"
	}
	return s
}

// progress writes a running job's counters at most every ProgressInterval.
type progress struct {
	mu                  sync.Mutex
	bytes, total, files int64
	dirty               bool
	done                chan struct{}
	wg                  sync.WaitGroup
}

func (r *Runner) startProgress(ctx context.Context, id string) *progress {
	p := &progress{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(r.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p.mu.Lock()
			dirty := p.dirty
			u := catalog.JobUpdate{IfState: catalog.Ptr(catalog.StateRunning), BytesDone: catalog.Ptr(p.bytes),
				BytesTotal: catalog.Ptr(p.total), FilesDone: catalog.Ptr(p.files)}
			p.dirty = false
			p.mu.Unlock()
			if !dirty {
				continue
			}
			// A failed progress write is not the job's failure: the next tick or the end
			// writes the counters again.
			_ = r.env.Store.Tx(ctx, func(tx catalog.Tx) error {
				_, err := tx.UpdateJob(ctx, id, u)
				return err
			})
		}
	}()
	return p
}

func (p *progress) set(bytes, total, files uint64) {
	p.mu.Lock()
	p.bytes, p.total, p.files, p.dirty = int64(bytes), int64(total), int64(files), true
	p.mu.Unlock()
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}
