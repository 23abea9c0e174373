package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/errs"
)

// Defaults of QueueOptions.
const (
	DefaultWorkers       = 4
	DefaultPollInterval  = time.Second
	DefaultRetryDelay    = 30 * time.Second
	DefaultRetryMaxDelay = 15 * time.Minute
	DefaultBusyDelay     = 10 * time.Second
	DefaultRescueAfter   = 24 * time.Hour
)

// QueueOptions configure a Queue; zero fields take the defaults above.
type QueueOptions struct {
	// ID names this server among those sharing the catalog. It must stay the same across
	// restarts and differ between servers: on Start, jobs left RUNNING by a previous run
	// with this ID are known to be dead and are recovered at once. Default: the runner's
	// Env.Host.
	ID      string
	Workers int // jobs this server runs at once
	// PerVault and PerHost bound the jobs RUNNING at once (counted in the catalog, so across
	// servers) that touch one vault (as source or target) and that run on one host. Zero
	// means no limit. A job waiting for a slot stays PENDING and is tried again after
	// BusyDelay.
	PerVault, PerHost int
	// PollInterval is how often River looks for jobs to run (and for cancel requests of
	// jobs running here) when no notification reached it.
	PollInterval time.Duration
	// RetryDelay is the wait before the second attempt of a job that failed with a
	// retryable error; each later wait doubles, up to RetryMaxDelay.
	RetryDelay, RetryMaxDelay time.Duration
	BusyDelay                 time.Duration
	// RescueAfter is how long a job may stay running on a server that stopped reporting
	// before River hands it to another server (which then recovers it as interrupted). It
	// must exceed the longest job.
	RescueAfter time.Duration
	Logger      *slog.Logger // River's log; slog.Default() when nil
}

// riverKind is the River job kind of every Rewind job.
const riverKind = "rewind_job"

// jobArgs are a River job's arguments: only the catalog job and its attempt. The attempt
// makes the arguments of a retry differ from the attempt it replaces, so River's uniqueness
// by arguments makes enqueuing one attempt twice run it once while a retry is a new job.
type jobArgs struct {
	JobID   string `json:"job_id"`
	Attempt int    `json:"attempt"`
}

func (jobArgs) Kind() string { return riverKind }

func (jobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type worker struct {
	river.WorkerDefaults[jobArgs]
	q *Queue
}

func (w *worker) Work(ctx context.Context, rj *river.Job[jobArgs]) error { return w.q.work(ctx, rj) }

// Queue runs catalog jobs durably with River, whose tables live in the catalog database
// (River's migrations run in Open). Safe for concurrent use.
//
// Every job of a catalog that a Queue serves must be run through a Queue: a job found
// RUNNING at Start with no live River job behind it is taken for one whose server died.
type Queue struct {
	store  *sqlstore.Store
	runner *Runner
	opts   QueueOptions
	client *river.Client[*sql.Tx]

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // catalog job ID -> its cancel, for jobs running here
}

// Open prepares a queue on store's database: it brings River's tables up to date (on
// PostgreSQL under an advisory lock, so servers starting together migrate once) and builds
// the River client; Start starts working. On SQLite, River shares the catalog store's one
// connection (Store.DB): River's SQLite driver wants a single connection, and sharing it
// makes River's statements queue behind catalog transactions in this process instead of
// failing with SQLITE_BUSY. Errors: errs.Invalid for bad options, errs.Unavailable when the
// database cannot be reached, errs.Internal when River refuses its configuration.
func Open(ctx context.Context, store *sqlstore.Store, runner *Runner, opts QueueOptions) (*Queue, error) {
	const op = "jobs.Open"
	if store == nil || runner == nil {
		return nil, errs.Errorf(op, errs.Invalid, "a queue needs a catalog store and a runner")
	}
	if opts.Workers < 0 || opts.PerVault < 0 || opts.PerHost < 0 {
		return nil, errs.Errorf(op, errs.Invalid, "negative workers or limits (workers %d, per vault %d, per host %d)",
			opts.Workers, opts.PerVault, opts.PerHost)
	}
	if opts.ID == "" {
		opts.ID = runner.env.Host
	}
	if opts.ID == "" || len(opts.ID) > 100 {
		return nil, errs.Errorf(op, errs.Invalid, "queue ID %q: want 1 to 100 characters", opts.ID).
			WithHint("name the server: its host name, stable across restarts")
	}
	setDefault(&opts.Workers, DefaultWorkers)
	setDefault(&opts.PollInterval, DefaultPollInterval)
	setDefault(&opts.RetryDelay, DefaultRetryDelay)
	setDefault(&opts.RetryMaxDelay, DefaultRetryMaxDelay)
	setDefault(&opts.BusyDelay, DefaultBusyDelay)
	setDefault(&opts.RescueAfter, DefaultRescueAfter)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}

	var driver riverdriver.Driver[*sql.Tx]
	switch store.Dialect() {
	case "sqlite":
		driver = riversqlite.New(store.DB())
	case "postgres":
		driver = riverdatabasesql.New(store.DB())
	default:
		return nil, errs.Errorf(op, errs.Invalid, "catalog dialect %q has no River driver", store.Dialect())
	}
	if err := migrate(ctx, store, driver); err != nil {
		return nil, err
	}
	q := &Queue{store: store, runner: runner, opts: opts, running: map[string]context.CancelCauseFunc{}}
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{q: q})
	client, err := river.NewClient(driver, &river.Config{
		ID:                   opts.ID,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}},
		Workers:              workers,
		FetchPollInterval:    opts.PollInterval,
		FetchCooldown:        min(opts.PollInterval, 100*time.Millisecond),
		JobTimeout:           -1, // jobs end by their own completion window (Job.CompleteBy)
		RescueStuckJobsAfter: opts.RescueAfter,
		Logger:               opts.Logger,
	})
	if err != nil {
		return nil, errs.E(op, errs.Internal, fmt.Errorf("river client: %w", err))
	}
	q.client = client
	return q, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// migrationLock is the PostgreSQL advisory lock key held while River's tables migrate.
const migrationLock = 0x72657769 // "rewi"

func migrate(ctx context.Context, store *sqlstore.Store, driver riverdriver.Driver[*sql.Tx]) error {
	const op = "jobs.Open"
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return errs.E(op, errs.Internal, fmt.Errorf("river migrations: %w", err))
	}
	if store.Dialect() == "postgres" {
		// Each River migration commits on its own (a new enum value must be committed before
		// use), so servers starting together serialize on a session advisory lock.
		conn, err := store.DB().Conn(ctx)
		if err != nil {
			return errs.E(op, errs.Unavailable, fmt.Errorf("migrating the job queue tables: %w", err))
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
			return errs.E(op, errs.Unavailable, fmt.Errorf("locking the job queue migrations: %w", err))
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("migrating the job queue tables: %w", err))
	}
	return nil
}

// Enqueue makes catalog job id run: a CREATED job becomes PENDING (with its event) and a
// River job for its current attempt is inserted. Enqueuing the same attempt again (from
// this server or another) inserts nothing, so the job runs once. A job already terminal is
// left alone. Errors: errs.NotFound for an unknown job, errs.Unavailable when the database
// cannot be reached.
func (q *Queue) Enqueue(ctx context.Context, id string) error {
	var j *catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		if j, err = tx.GetJob(ctx, id); err != nil {
			return err
		}
		if j.State == catalog.StateCreated {
			j, err = catalog.UpdateJobWithEvent(ctx, tx, id, catalog.JobUpdate{State: catalog.Ptr(catalog.StatePending)}, q.runner.jobEvent)
		}
		return err
	})
	if err != nil {
		return err
	}
	if j.State.Terminal() {
		return nil
	}
	return q.insert(ctx, id, j.Attempt, time.Time{})
}

// insert adds the River job of one attempt, to run at at (now when zero).
func (q *Queue) insert(ctx context.Context, id string, attempt int, at time.Time) error {
	if _, err := q.client.Insert(ctx, jobArgs{JobID: id, Attempt: attempt}, &river.InsertOpts{ScheduledAt: at}); err != nil {
		return errs.E("jobs.Enqueue", errs.Unavailable, fmt.Errorf("job %s: queuing attempt %d: %w", id, attempt, err))
	}
	return nil
}

// Start recovers what a previous run of this server left behind, then starts working: jobs
// RUNNING in the catalog whose River job is not running on another live server (the server
// was killed) are re-queued as PENDING with Attempt+1 when their kind is idempotent (backup,
// copy, verify, prune) and marked FAILED with the error "interrupted: the server stopped
// while the job ran" otherwise (restore), each with its event; PENDING jobs that no River
// job carries (enqueued when the server died) are enqueued. River's own rescuer hands a job
// stuck on another server that stopped reporting back after RescueAfter; the worker then
// recovers it the same way. ctx bounds the recovery; River runs until Stop.
func (q *Queue) Start(ctx context.Context) error {
	const op = "jobs.Start"
	if err := q.recoverAll(ctx); err != nil {
		return err
	}
	if err := q.client.Start(context.WithoutCancel(ctx)); err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("starting the job queue: %w", err))
	}
	return nil
}

func (q *Queue) recoverAll(ctx context.Context) error {
	var running, pending []*catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		if running, err = tx.ListJobs(ctx, catalog.JobFilter{State: catalog.Ptr(catalog.StateRunning)}); err != nil {
			return err
		}
		pending, err = tx.ListJobs(ctx, catalog.JobFilter{State: catalog.Ptr(catalog.StatePending)})
		return err
	})
	if err != nil {
		return err
	}
	if len(running) > 0 {
		rows, err := q.riverRunning(ctx)
		if err != nil {
			return err
		}
		for _, j := range running {
			if j.HeartbeatAt != nil {
				continue // an agent runs it; ReclaimAgentJobs takes it back if the agent is gone
			}
			row, ok := rows[jobArgs{j.ID, j.Attempt}]
			if ok && len(row.AttemptedBy) > 0 && row.AttemptedBy[len(row.AttemptedBy)-1] != q.opts.ID {
				continue // running on another server, which is alive as far as River knows
			}
			if err := q.recover(ctx, j); err != nil {
				return err
			}
		}
	}
	for _, j := range pending {
		if err := q.insert(ctx, j.ID, j.Attempt, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// riverRunning returns River's running Rewind jobs by their arguments.
func (q *Queue) riverRunning(ctx context.Context) (map[jobArgs]*rivertype.JobRow, error) {
	out := map[jobArgs]*rivertype.JobRow{}
	params := river.NewJobListParams().Kinds(riverKind).States(rivertype.JobStateRunning).First(10000)
	res, err := q.client.JobList(ctx, params)
	if err != nil {
		return nil, errs.E("jobs.Start", errs.Unavailable, fmt.Errorf("listing running queue jobs: %w", err))
	}
	for _, row := range res.Jobs {
		var a jobArgs
		if err := unmarshalArgs(row.EncodedArgs, &a); err != nil {
			continue // not one of ours: the kind matched but the arguments do not decode
		}
		out[a] = row
	}
	return out, nil
}

// recover ends the interrupted attempt of a job left RUNNING by a server that stopped.
func (q *Queue) recover(ctx context.Context, j *catalog.Job) error {
	u := catalog.JobUpdate{IfState: catalog.Ptr(catalog.StateRunning)}
	requeue := idempotent(j.Kind)
	if requeue {
		u.State, u.Attempt = catalog.Ptr(catalog.StatePending), catalog.Ptr(j.Attempt+1)
		u.Error = catalog.Ptr(interruptedMsg + "; it will run again")
	} else {
		u.State, u.Error = catalog.Ptr(catalog.StateFailed), catalog.Ptr(interruptedMsg)
	}
	var after *catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		after, err = catalog.UpdateJobWithEvent(ctx, tx, j.ID, u, q.runner.jobEvent)
		return err
	})
	if errs.Is(err, errs.Conflict) {
		return nil // another server recovered or ended it first
	}
	if err != nil {
		return err
	}
	if requeue {
		return q.insert(ctx, j.ID, after.Attempt, time.Time{})
	}
	return nil
}

// work runs one River job: one attempt of a catalog job.
func (q *Queue) work(ctx context.Context, rj *river.Job[jobArgs]) error {
	id := rj.Args.JobID
	var j *catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		j, err = tx.GetJob(ctx, id)
		return err
	})
	if errs.Is(err, errs.NotFound) {
		return river.JobCancel(err) // retrying cannot make it appear
	}
	if err != nil {
		return err // River retries: the catalog may be back
	}
	if j.State.Terminal() || j.Attempt != rj.Args.Attempt {
		return nil // canceled, already run, or superseded by a later attempt
	}
	if q.runner.isAgentJob(j) {
		return nil // the agent on its host claims it through the API (ClaimAgentJob)
	}
	if j.State == catalog.StateRunning {
		// River hands a job out again only after the attempt that claimed it died.
		return q.recover(ctx, j)
	}

	jctx, cancel := context.WithCancelCause(ctx)
	q.mu.Lock()
	q.running[id] = cancel
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.running, id)
		q.mu.Unlock()
		cancel(nil)
	}()
	res, err := q.runner.run(jctx, id, q.admit, q.backoff(j.Attempt+1))
	if errs.Is(err, errs.Conflict) {
		return nil // another worker claimed it first; it runs there
	}
	if err != nil {
		return err
	}
	wctx := context.WithoutCancel(ctx)
	switch res.out {
	case outBusy:
		return river.JobSnooze(q.opts.BusyDelay)
	case outRetry:
		return q.insert(wctx, id, res.job.Attempt, q.runner.env.Now().Add(q.backoff(res.job.Attempt)))
	case outRequeue:
		return q.insert(wctx, id, res.job.Attempt, time.Time{})
	}
	var first error
	for _, f := range res.followUps {
		// A follow-up not queued now is queued by the next Start (it is PENDING).
		if err := q.Enqueue(wctx, f); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		q.opts.Logger.Warn("jobs: queuing follow-up jobs", "job", id, "error", first)
	}
	return nil
}

// backoff is the wait before attempt (1 for the first retry).
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.opts.RetryDelay
	for i := 1; i < attempt && d < q.opts.RetryMaxDelay; i++ {
		d *= 2
	}
	return min(d, q.opts.RetryMaxDelay)
}

// admit applies the per-vault and per-host limits inside the claiming transaction.
func (q *Queue) admit(ctx context.Context, tx catalog.Tx, j *catalog.Job, host string) error {
	if q.opts.PerVault == 0 && q.opts.PerHost == 0 {
		return nil
	}
	running, err := tx.ListJobs(ctx, catalog.JobFilter{State: catalog.Ptr(catalog.StateRunning)})
	if err != nil {
		return err
	}
	for _, v := range []string{j.Vault, j.TargetVault} {
		if v == "" || q.opts.PerVault == 0 {
			continue
		}
		n := 0
		for _, o := range running {
			if o.Vault == v || o.TargetVault == v {
				n++
			}
		}
		if n >= q.opts.PerVault {
			return errBusy
		}
	}
	if q.opts.PerHost > 0 {
		n := 0
		for _, o := range running {
			if o.Host == host {
				n++
			}
		}
		if n >= q.opts.PerHost {
			return errBusy
		}
	}
	return nil
}

// Cancel cancels catalog job id: a CREATED or PENDING job becomes ABORTED at once (with its
// event); a RUNNING job's context is canceled, here or, through River, on the server running
// it, and the job ends ABORTED when its worker notices (within PollInterval on another
// server). Errors: errs.NotFound for an unknown job, errs.Conflict for a job already
// finished, errs.Unavailable when the database cannot be reached.
func (q *Queue) Cancel(ctx context.Context, id string) error {
	const op = "jobs.Cancel"
	var j *catalog.Job
	err := q.store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		if j, err = tx.GetJob(ctx, id); err != nil {
			return err
		}
		switch {
		case j.State.Terminal():
			return errs.Errorf(op, errs.Conflict, "job %s is already %s", id, j.State)
		case j.State == catalog.StateRunning && j.HeartbeatAt == nil:
			return nil
		}
		// Not started, or run by an agent, which learns at its next heartbeat that the job
		// was aborted and stops.
		j, err = catalog.UpdateJobWithEvent(ctx, tx, id, catalog.JobUpdate{
			State: catalog.Ptr(catalog.StateAborted), Error: catalog.Ptr("canceled by request"),
		}, q.runner.jobEvent)
		return err
	})
	if err != nil || j.State != catalog.StateRunning {
		return err
	}
	q.mu.Lock()
	cancel, ok := q.running[id]
	q.mu.Unlock()
	if ok {
		cancel(ErrCanceled)
		return nil
	}
	rows, err := q.riverRunning(ctx)
	if err != nil {
		return err
	}
	row, ok := rows[jobArgs{id, j.Attempt}]
	if !ok {
		return errs.Errorf(op, errs.Conflict, "job %s is RUNNING but no server runs it now", id).
			WithHint("its server stopped; the job is recovered when that server starts again")
	}
	if _, err := q.client.JobCancel(ctx, row.ID); err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("job %s: %w", id, err))
	}
	return nil
}

// Stop stops fetching jobs and waits for the running ones to end; when ctx ends first, the
// running jobs are canceled (idempotent ones are re-queued, restores fail as interrupted)
// and Stop waits for them to record that. It returns ctx's error in that case.
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err2 := q.client.StopAndCancel(stopCtx); err2 != nil {
			return errs.E("jobs.Stop", errs.Unavailable, fmt.Errorf("stopping the job queue: %w", err2))
		}
		return errs.E("jobs.Stop", errs.Canceled, err)
	}
	return errs.E("jobs.Stop", errs.Unavailable, fmt.Errorf("stopping the job queue: %w", err))
}

func unmarshalArgs(b []byte, a *jobArgs) error {
	if err := json.Unmarshal(b, a); err != nil {
		return err
	}
	if a.JobID == "" {
		return errors.New("no job_id")
	}
	return nil
}
