package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// rawArg returns the text of a JSON column, NULL when empty.
func rawArg(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func scanRunbook(r scanner) (*catalog.Runbook, error) {
	var rb catalog.Runbook
	err := r.Scan(&rb.Name, jsonCol{&rb.Definition}, &rb.Source, timeCol{&rb.UpdatedAt})
	return &rb, err
}

func (t *tx) UpsertRunbook(ctx context.Context, r *catalog.Runbook) error {
	const op = "catalog.UpsertRunbook"
	if err := r.Prepare(t.now); err != nil {
		return err
	}
	_, err := t.exec(ctx, op, `INSERT INTO runbooks (name, definition, source, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, source = excluded.source, updated_at = excluded.updated_at`,
		r.Name, string(r.Definition), r.Source, t.d.time(r.UpdatedAt))
	return err
}

func (t *tx) GetRunbook(ctx context.Context, name string) (*catalog.Runbook, error) {
	return queryOne(ctx, t, "catalog.GetRunbook", "runbook "+name,
		"SELECT name, definition, source, updated_at FROM runbooks WHERE name = $1", []any{name}, scanRunbook)
}

func (t *tx) ListRunbooks(ctx context.Context) ([]*catalog.Runbook, error) {
	return queryAll(ctx, t, "catalog.ListRunbooks", "SELECT name, definition, source, updated_at FROM runbooks ORDER BY name",
		nil, scanRunbook)
}

func (t *tx) DeleteRunbook(ctx context.Context, name string) error {
	const op = "catalog.DeleteRunbook"
	res, err := t.exec(ctx, op, "DELETE FROM runbooks WHERE name = $1", name)
	if err != nil {
		return err
	}
	n, err := affected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Errorf(op, errs.NotFound, "runbook %s not found", name)
	}
	return nil
}

const executionCols = `id, name, runbook, definition, input, status, output, error, cause, started_at, stopped_at,
	owner, lease_until`

func scanExecution(r scanner) (*catalog.Execution, error) {
	var e catalog.Execution
	err := r.Scan(&e.ID, &e.Name, &e.Runbook, jsonCol{&e.Definition}, jsonCol{&e.Input}, &e.Status, jsonCol{&e.Output},
		&e.Error, &e.Cause, timeCol{&e.StartedAt}, timeCol{&e.StoppedAt}, &e.Owner, timeCol{&e.LeaseUntil})
	return &e, err
}

func (t *tx) CreateExecution(ctx context.Context, e *catalog.Execution) error {
	const op = "catalog.CreateExecution"
	if err := e.Prepare(t.now); err != nil {
		return err
	}
	d := t.d
	// ON CONFLICT DO NOTHING keeps the transaction usable after a duplicate (see CreateJob).
	res, err := t.exec(ctx, op, `INSERT INTO executions (`+executionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
	$10, $11, $12, $13) ON CONFLICT DO NOTHING`,
		e.ID, e.Name, e.Runbook, string(e.Definition), string(e.Input), string(e.Status), rawArg(e.Output), e.Error,
		e.Cause, d.time(e.StartedAt), d.timePtr(e.StoppedAt), e.Owner, d.timePtr(e.LeaseUntil))
	if err != nil {
		return err
	}
	n, err := affected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Errorf(op, errs.Exists, "execution %s exists", e.ID)
	}
	return nil
}

func (t *tx) GetExecution(ctx context.Context, id string) (*catalog.Execution, error) {
	return t.getExecution(ctx, "catalog.GetExecution", id, "")
}

func (t *tx) getExecution(ctx context.Context, op, id, suffix string) (*catalog.Execution, error) {
	return queryOne(ctx, t, op, "execution "+id, "SELECT "+executionCols+" FROM executions WHERE id = $1"+suffix,
		[]any{id}, scanExecution)
}

func (t *tx) ListExecutions(ctx context.Context, f catalog.ExecutionFilter) ([]*catalog.Execution, error) {
	const op = "catalog.ListExecutions"
	if err := f.Validate(); err != nil {
		return nil, err
	}
	w := &where{}
	if f.Status != nil {
		w.add("status = " + w.arg(string(*f.Status)))
	}
	if f.Runbook != nil {
		w.add("runbook = " + w.arg(*f.Runbook))
	}
	if f.Owner != nil {
		w.add("owner = " + w.arg(*f.Owner))
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
	return queryAll(ctx, t, op, "SELECT "+executionCols+" FROM executions"+w.String()+order+w.limit(f.Limit), w.args,
		scanExecution)
}

// writeExecution stores e's mutable columns.
func (t *tx) writeExecution(ctx context.Context, op string, e *catalog.Execution) error {
	_, err := t.exec(ctx, op, `UPDATE executions SET status = $2, output = $3, error = $4, cause = $5, stopped_at = $6,
	owner = $7, lease_until = $8 WHERE id = $1`,
		e.ID, string(e.Status), rawArg(e.Output), e.Error, e.Cause, t.d.timePtr(e.StoppedAt), e.Owner,
		t.d.timePtr(e.LeaseUntil))
	return err
}

func (t *tx) UpdateExecution(ctx context.Context, id string, u catalog.ExecutionUpdate) (*catalog.Execution, error) {
	const op = "catalog.UpdateExecution"
	e, err := t.getExecution(ctx, op, id, t.d.forUpdate)
	if err != nil {
		return nil, err
	}
	if err := u.Apply(e, t.now); err != nil {
		return nil, err
	}
	if err := t.writeExecution(ctx, op, e); err != nil {
		return nil, err
	}
	return e, nil
}

func (t *tx) ClaimExecution(ctx context.Context, id, owner string, leaseUntil time.Time) (*catalog.Execution, error) {
	const op = "catalog.ClaimExecution"
	e, err := t.getExecution(ctx, op, id, t.d.forUpdate)
	if err != nil {
		return nil, err
	}
	if err := e.CanClaim(owner, t.now); err != nil {
		return nil, err
	}
	lease := catalog.Micro(leaseUntil)
	e.Owner, e.LeaseUntil = owner, &lease
	if err := t.writeExecution(ctx, op, e); err != nil {
		return nil, err
	}
	return e, nil
}

func (t *tx) AppendHistory(ctx context.Context, execution string, events []catalog.HistoryEvent) error {
	const op = "catalog.AppendHistory"
	e, err := t.getExecution(ctx, op, execution, t.d.forUpdate)
	if err != nil {
		return err
	}
	if e.Status.Terminal() {
		return errs.Errorf(op, errs.Conflict, "execution %s is %s: its history is complete", execution, e.Status)
	}
	var last int64
	if err := t.tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM execution_history WHERE execution = $1",
		execution).Scan(&last); err != nil {
		return classify(op, err)
	}
	for _, h := range events {
		if err := h.Validate(); err != nil {
			return err
		}
		if h.Seq <= last {
			return errs.Errorf(op, errs.Conflict, "execution %s: history event %d is not after event %d", execution, h.Seq, last).
				WithHint("another writer recorded this execution's events; read its history again")
		}
		last = h.Seq
	}
	for _, h := range events {
		if _, err := t.exec(ctx, op, `INSERT INTO execution_history (execution, seq, type, time, event) VALUES ($1, $2, $3, $4, $5)`,
			execution, h.Seq, h.Type, t.d.time(catalog.Micro(h.Time)), string(h.Event)); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ListHistory(ctx context.Context, execution string) ([]catalog.HistoryEvent, error) {
	const op = "catalog.ListHistory"
	if _, err := t.getExecution(ctx, op, execution, ""); err != nil {
		return nil, err
	}
	return queryAll(ctx, t, op, "SELECT execution, seq, type, time, event FROM execution_history WHERE execution = $1 ORDER BY seq",
		[]any{execution}, func(r scanner) (catalog.HistoryEvent, error) {
			var h catalog.HistoryEvent
			err := r.Scan(&h.Execution, &h.Seq, &h.Type, timeCol{&h.Time}, jsonCol{&h.Event})
			return h, err
		})
}

const tokenCols = "token, execution, state, created_at, resolution, output, error, cause, resolved_at"

func scanToken(r scanner) (*catalog.TaskToken, error) {
	var tk catalog.TaskToken
	err := r.Scan(&tk.Token, &tk.Execution, &tk.State, timeCol{&tk.CreatedAt}, &tk.Resolution, jsonCol{&tk.Output},
		&tk.Error, &tk.Cause, timeCol{&tk.ResolvedAt})
	return &tk, err
}

func (t *tx) CreateTaskToken(ctx context.Context, tk *catalog.TaskToken) error {
	const op = "catalog.CreateTaskToken"
	if err := tk.Prepare(t.now); err != nil {
		return err
	}
	if _, err := t.getExecution(ctx, op, tk.Execution, ""); err != nil {
		return err
	}
	res, err := t.exec(ctx, op, `INSERT INTO task_tokens (token, execution, state, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING`, tk.Token, tk.Execution, tk.State, t.d.time(tk.CreatedAt))
	if err != nil {
		return err
	}
	n, err := affected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Errorf(op, errs.Exists, "task token exists")
	}
	return nil
}

func (t *tx) GetTaskToken(ctx context.Context, token string) (*catalog.TaskToken, error) {
	return t.getToken(ctx, "catalog.GetTaskToken", token, "")
}

func (t *tx) getToken(ctx context.Context, op, token, suffix string) (*catalog.TaskToken, error) {
	tk, err := queryOne(ctx, t, op, "task token", "SELECT "+tokenCols+" FROM task_tokens WHERE token = $1"+suffix,
		[]any{token}, scanToken)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Errorf(op, errs.NotFound, "no task waits for this token").
			WithHint("check the token: copy it whole from the notification or 'rewind execution show'")
	}
	return tk, err
}

func (t *tx) ResolveTaskToken(ctx context.Context, token string, d catalog.TokenDecision) (*catalog.TaskToken, error) {
	const op = "catalog.ResolveTaskToken"
	if err := d.Validate(); err != nil {
		return nil, err
	}
	tk, err := t.getToken(ctx, op, token, t.d.forUpdate)
	if err != nil {
		return nil, err
	}
	if tk.Resolution != catalog.TokenUnresolved {
		return nil, errs.Errorf(op, errs.Conflict, "the task token of state %q (execution %s) is already resolved: %s",
			tk.State, tk.Execution, tk.Resolution).WithHint("a decision is final; see 'rewind execution show " + tk.Execution + "'")
	}
	now := t.now
	tk.Resolution, tk.Output, tk.Error, tk.Cause, tk.ResolvedAt = d.Resolution, d.Output, d.Error, d.Cause, &now
	if _, err := t.exec(ctx, op, `UPDATE task_tokens SET resolution = $2, output = $3, error = $4, cause = $5,
	resolved_at = $6 WHERE token = $1`, token, string(d.Resolution), rawArg(d.Output), d.Error, d.Cause, t.d.time(now)); err != nil {
		return nil, err
	}
	return tk, nil
}

func (t *tx) ListTaskTokens(ctx context.Context, f catalog.TaskTokenFilter) ([]*catalog.TaskToken, error) {
	const op = "catalog.ListTaskTokens"
	if f.Limit < 0 {
		return nil, errs.Errorf(op, errs.Invalid, "negative limit %d", f.Limit)
	}
	w := &where{}
	if f.Execution != nil {
		w.add("execution = " + w.arg(*f.Execution))
	}
	if f.Unresolved {
		w.add("resolution = ''")
	}
	return queryAll(ctx, t, op, "SELECT "+tokenCols+" FROM task_tokens"+w.String()+" ORDER BY created_at, token"+w.limit(f.Limit),
		w.args, scanToken)
}
