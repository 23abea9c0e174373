package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

const deliveryCols = `id, event_id, rule, target, kind, replay, state, spec, attempts, first_attempt_at, next_at,
	last_error, owner, lease_until, created_at, finished_at`

func scanDelivery(r scanner) (*catalog.Delivery, error) {
	var d catalog.Delivery
	err := r.Scan(&d.ID, &d.EventID, &d.Rule, &d.Target, &d.Kind, &d.Replay, &d.State, jsonCol{&d.Spec}, &d.Attempts,
		timeCol{&d.FirstAttemptAt}, timeCol{&d.NextAt}, &d.LastError, &d.Owner, timeCol{&d.LeaseUntil},
		timeCol{&d.CreatedAt}, timeCol{&d.FinishedAt})
	return &d, err
}

func (t *tx) CreateDeliveries(ctx context.Context, ds []*catalog.Delivery) error {
	const op = "catalog.CreateDeliveries"
	for _, d := range ds {
		if err := d.Prepare(t.now); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.ID] {
			return errs.Errorf(op, errs.Exists, "delivery %s is given twice", d.ID)
		}
		seen[d.ID] = true
	}
	if len(ds) > 0 {
		w := &where{}
		ids := make([]string, 0, len(ds))
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		w.in("id", ids)
		found, err := queryAll(ctx, t, op, "SELECT id FROM deliveries"+w.String(), w.args, func(r scanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return errs.Errorf(op, errs.Exists, "delivery %s exists", strings.Join(found, ", "))
		}
	}
	for _, d := range ds {
		_, err := t.exec(ctx, op, `INSERT INTO deliveries (`+deliveryCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
	$10, $11, $12, $13, $14, $15, $16)`,
			d.ID, d.EventID, d.Rule, d.Target, d.Kind, d.Replay, string(d.State), string(d.Spec), d.Attempts,
			t.d.timePtr(d.FirstAttemptAt), t.d.time(d.NextAt), d.LastError, d.Owner, t.d.timePtr(d.LeaseUntil),
			t.d.time(d.CreatedAt), t.d.timePtr(d.FinishedAt))
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ClaimDeliveries(ctx context.Context, owner string, leaseUntil time.Time, limit int) ([]*catalog.Delivery, error) {
	const op = "catalog.ClaimDeliveries"
	if owner == "" || limit < 1 {
		return nil, errs.Errorf(op, errs.Invalid, "claiming deliveries needs an owner and a limit of at least 1 (got %q, %d)", owner, limit)
	}
	now := t.d.time(t.now)
	lock := t.d.forUpdate
	if lock != "" {
		// Servers sharing a PostgreSQL catalog each take the rows the others have not.
		lock += " SKIP LOCKED"
	}
	ds, err := queryAll(ctx, t, op, "SELECT "+deliveryCols+` FROM deliveries
WHERE state = 'PENDING' AND next_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
ORDER BY next_at, id LIMIT $2`+lock, []any{now, limit}, scanDelivery)
	if err != nil {
		return nil, err
	}
	lease := catalog.Micro(leaseUntil)
	for _, d := range ds {
		d.Owner, d.LeaseUntil = owner, &lease
		if err := t.writeDelivery(ctx, op, d); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// writeDelivery stores d's mutable columns.
func (t *tx) writeDelivery(ctx context.Context, op string, d *catalog.Delivery) error {
	_, err := t.exec(ctx, op, `UPDATE deliveries SET state = $2, attempts = $3, first_attempt_at = $4, next_at = $5,
	last_error = $6, owner = $7, lease_until = $8, finished_at = $9 WHERE id = $1`,
		d.ID, string(d.State), d.Attempts, t.d.timePtr(d.FirstAttemptAt), t.d.time(d.NextAt), d.LastError, d.Owner,
		t.d.timePtr(d.LeaseUntil), t.d.timePtr(d.FinishedAt))
	return err
}

func (t *tx) getDelivery(ctx context.Context, op, id, suffix string) (*catalog.Delivery, error) {
	return queryOne(ctx, t, op, "delivery "+id, "SELECT "+deliveryCols+" FROM deliveries WHERE id = $1"+suffix,
		[]any{id}, scanDelivery)
}

func (t *tx) GetDelivery(ctx context.Context, id string) (*catalog.Delivery, error) {
	return t.getDelivery(ctx, "catalog.GetDelivery", id, "")
}

func (t *tx) UpdateDelivery(ctx context.Context, id string, u catalog.DeliveryUpdate) (*catalog.Delivery, error) {
	const op = "catalog.UpdateDelivery"
	d, err := t.getDelivery(ctx, op, id, t.d.forUpdate)
	if err != nil {
		return nil, err
	}
	if err := u.Apply(d, t.now); err != nil {
		return nil, err
	}
	if err := t.writeDelivery(ctx, op, d); err != nil {
		return nil, err
	}
	return d, nil
}

func (t *tx) ListDeliveries(ctx context.Context, f catalog.DeliveryFilter) ([]*catalog.Delivery, error) {
	const op = "catalog.ListDeliveries"
	if err := f.Validate(); err != nil {
		return nil, err
	}
	w := &where{}
	if f.State != nil {
		w.add("state = " + w.arg(string(*f.State)))
	}
	if f.Rule != nil {
		w.add("rule = " + w.arg(*f.Rule))
	}
	if f.EventID != nil {
		w.add("event_id = " + w.arg(*f.EventID))
	}
	if f.Replay != nil {
		w.add("replay = " + w.arg(*f.Replay))
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
	return queryAll(ctx, t, op, "SELECT "+deliveryCols+" FROM deliveries"+w.String()+order+w.limit(f.Limit), w.args,
		scanDelivery)
}

func (t *tx) DeleteEventsBefore(ctx context.Context, before time.Time) (int, error) {
	const op = "catalog.DeleteEventsBefore"
	res, err := t.exec(ctx, op, "DELETE FROM events WHERE time < $1 AND dispatched_at IS NOT NULL", t.d.time(before))
	if err != nil {
		return 0, err
	}
	n, err := affected(op, res)
	return int(n), err
}

const incidentCols = "id, title, severity, rule, event_id, event, status, opened_at, closed_at"

func scanIncident(r scanner) (*catalog.Incident, error) {
	var inc catalog.Incident
	err := r.Scan(&inc.ID, &inc.Title, &inc.Severity, &inc.Rule, &inc.EventID, jsonCol{&inc.Event}, &inc.Status,
		timeCol{&inc.OpenedAt}, timeCol{&inc.ClosedAt})
	return &inc, err
}

func (t *tx) CreateIncident(ctx context.Context, inc *catalog.Incident) error {
	const op = "catalog.CreateIncident"
	if err := inc.Prepare(t.now); err != nil {
		return err
	}
	// ON CONFLICT DO NOTHING keeps the transaction usable after a duplicate (see CreateJob).
	res, err := t.exec(ctx, op, `INSERT INTO incidents (`+incidentCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING`,
		inc.ID, inc.Title, inc.Severity, inc.Rule, inc.EventID, string(inc.Event), string(inc.Status),
		t.d.time(inc.OpenedAt), t.d.timePtr(inc.ClosedAt))
	if err != nil {
		return err
	}
	n, err := affected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Errorf(op, errs.Exists, "incident %s exists", inc.ID)
	}
	return nil
}

func (t *tx) GetIncident(ctx context.Context, id string) (*catalog.Incident, error) {
	return queryOne(ctx, t, "catalog.GetIncident", "incident "+id, "SELECT "+incidentCols+" FROM incidents WHERE id = $1",
		[]any{id}, scanIncident)
}

func (t *tx) ListIncidents(ctx context.Context, f catalog.IncidentFilter) ([]*catalog.Incident, error) {
	const op = "catalog.ListIncidents"
	if err := f.Validate(); err != nil {
		return nil, err
	}
	w := &where{}
	if f.Status != nil {
		w.add("status = " + w.arg(string(*f.Status)))
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
	return queryAll(ctx, t, op, "SELECT "+incidentCols+" FROM incidents"+w.String()+order+w.limit(f.Limit), w.args,
		scanIncident)
}

func (t *tx) CloseIncident(ctx context.Context, id string) (*catalog.Incident, error) {
	const op = "catalog.CloseIncident"
	inc, err := queryOne(ctx, t, op, "incident "+id, "SELECT "+incidentCols+" FROM incidents WHERE id = $1"+t.d.forUpdate,
		[]any{id}, scanIncident)
	if err != nil {
		return nil, err
	}
	if inc.Status == catalog.IncidentClosed {
		return nil, errs.Errorf(op, errs.Conflict, "incident %s is closed already", id)
	}
	now := t.now
	inc.Status, inc.ClosedAt = catalog.IncidentClosed, &now
	if _, err := t.exec(ctx, op, "UPDATE incidents SET status = $2, closed_at = $3 WHERE id = $1",
		id, string(inc.Status), t.d.time(now)); err != nil {
		return nil, err
	}
	return inc, nil
}
