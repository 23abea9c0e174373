package sqlstore

import (
	"context"
	"database/sql"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

const jobCols = `id, kind, state, resource, vault, target_vault, plan, rule, host, scheduled_for, start_by,
	complete_by, created_at, started_at, finished_at, attempt, bytes_done, bytes_total, files_done, point_id,
	created_resource, error, params, dedup_key, heartbeat_at`

func scanJob(r scanner) (*catalog.Job, error) {
	var j catalog.Job
	err := r.Scan(&j.ID, &j.Kind, &j.State, &j.Resource, &j.Vault, &j.TargetVault, &j.Plan, &j.Rule, &j.Host,
		timeCol{&j.ScheduledFor}, timeCol{&j.StartBy}, timeCol{&j.CompleteBy}, timeCol{&j.CreatedAt},
		timeCol{&j.StartedAt}, timeCol{&j.FinishedAt}, &j.Attempt, &j.BytesDone, &j.BytesTotal, &j.FilesDone,
		&j.PointID, &j.CreatedResource, &j.Error, jsonCol{&j.Params}, nullStringCol{&j.DedupKey}, timeCol{&j.HeartbeatAt})
	return &j, err
}

// jobArgs returns j's columns in jobCols order.
func (t *tx) jobArgs(j *catalog.Job) []any {
	var params any
	if len(j.Params) > 0 {
		params = string(j.Params)
	}
	d := t.d
	return []any{j.ID, string(j.Kind), string(j.State), j.Resource, j.Vault, j.TargetVault, j.Plan, j.Rule, j.Host,
		d.timePtr(j.ScheduledFor), d.timePtr(j.StartBy), d.timePtr(j.CompleteBy), d.time(j.CreatedAt),
		d.timePtr(j.StartedAt), d.timePtr(j.FinishedAt), j.Attempt, j.BytesDone, j.BytesTotal, j.FilesDone,
		j.PointID, j.CreatedResource, j.Error, params, nullString(j.DedupKey), d.timePtr(j.HeartbeatAt)}
}

func (t *tx) CreateJob(ctx context.Context, j *catalog.Job) error {
	const op = "catalog.CreateJob"
	if err := j.Prepare(t.now); err != nil {
		return err
	}
	// ON CONFLICT DO NOTHING rather than a unique-violation error: on PostgreSQL an error
	// aborts the whole transaction, and the caller may want to go on after errs.Exists.
	// A concurrent transaction inserting the same key makes this one wait for its outcome.
	res, err := t.exec(ctx, op, `INSERT INTO jobs (`+jobCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
	$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) ON CONFLICT DO NOTHING`, t.jobArgs(j)...)
	if err != nil {
		return err
	}
	n, err := affected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		if j.DedupKey != "" {
			var id string
			err := t.tx.QueryRowContext(ctx, "SELECT id FROM jobs WHERE dedup_key = $1", j.DedupKey).Scan(&id)
			if err == nil {
				return errs.Errorf(op, errs.Exists, "a job with dedup key %q exists: %s", j.DedupKey, id)
			}
			if err != sql.ErrNoRows {
				return classify(op, err)
			}
		}
		return errs.Errorf(op, errs.Exists, "job %s exists", j.ID)
	}
	return nil
}

func (t *tx) GetJob(ctx context.Context, id string) (*catalog.Job, error) {
	return t.getJob(ctx, "catalog.GetJob", id, "")
}

func (t *tx) getJob(ctx context.Context, op, id, suffix string) (*catalog.Job, error) {
	return queryOne(ctx, t, op, "job "+id, "SELECT "+jobCols+" FROM jobs WHERE id = $1"+suffix, []any{id}, scanJob)
}

func (t *tx) ListJobs(ctx context.Context, f catalog.JobFilter) ([]*catalog.Job, error) {
	const op = "catalog.ListJobs"
	if err := f.Validate(); err != nil {
		return nil, err
	}
	w, order := t.findJobs(f)
	return queryAll(ctx, t, op, "SELECT "+jobCols+" FROM jobs"+w.String()+order+w.limit(f.Limit), w.args, scanJob)
}

// findJobs turns a filter into a WHERE clause and an ORDER BY.
func (t *tx) findJobs(f catalog.JobFilter) (*where, string) {
	w := &where{}
	if f.Kind != nil {
		w.add("kind = " + w.arg(string(*f.Kind)))
	}
	if f.State != nil {
		w.add("state = " + w.arg(string(*f.State)))
	}
	if len(f.States) > 0 {
		s := make([]string, len(f.States))
		for i, st := range f.States {
			s[i] = string(st)
		}
		w.in("state", s)
	}
	if f.Resource != nil {
		w.add("resource = " + w.arg(*f.Resource))
	}
	if f.Vault != nil {
		p := w.arg(*f.Vault)
		w.add("(vault = " + p + " OR target_vault = " + p + ")")
	}
	if f.Plan != nil {
		w.add("plan = " + w.arg(*f.Plan))
	}
	if f.DedupKey != nil {
		w.add("dedup_key = " + w.arg(*f.DedupKey))
	}
	if f.Since != nil {
		w.add("created_at >= " + w.arg(t.d.time(*f.Since)))
	}
	if f.Until != nil {
		w.add("created_at < " + w.arg(t.d.time(*f.Until)))
	}
	order := " ORDER BY id"
	if f.Newest {
		order = " ORDER BY id DESC"
	}
	if f.After != "" {
		if f.Newest {
			w.add("id < " + w.arg(f.After))
		} else {
			w.add("id > " + w.arg(f.After))
		}
	}
	return w, order
}

func (t *tx) UpdateJob(ctx context.Context, id string, u catalog.JobUpdate) (*catalog.Job, error) {
	const op = "catalog.UpdateJob"
	j, err := t.getJob(ctx, op, id, t.d.forUpdate)
	if err != nil {
		return nil, err
	}
	if err := u.Apply(j, t.now); err != nil {
		return nil, err
	}
	if _, err := t.exec(ctx, op, `UPDATE jobs SET state = $2, host = $3, started_at = $4, finished_at = $5,
	attempt = $6, bytes_done = $7, bytes_total = $8, files_done = $9, point_id = $10, created_resource = $11,
	error = $12, complete_by = $13, heartbeat_at = $14 WHERE id = $1`,
		j.ID, string(j.State), j.Host, t.d.timePtr(j.StartedAt), t.d.timePtr(j.FinishedAt), j.Attempt,
		j.BytesDone, j.BytesTotal, j.FilesDone, j.PointID, j.CreatedResource, j.Error, t.d.timePtr(j.CompleteBy),
		t.d.timePtr(j.HeartbeatAt)); err != nil {
		return nil, err
	}
	return j, nil
}
