package sqlstore

import (
	"context"
	"slices"
	"strings"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

const eventCols = "id, version, source, detail_type, time, site, resources, detail, dispatched_at"

func scanEvent(r scanner) (*catalog.Event, error) {
	var e catalog.Event
	if err := r.Scan(&e.ID, &e.Version, &e.Source, &e.DetailType, timeCol{&e.Time}, &e.Site,
		jsonCol{&e.Resources}, jsonCol{&e.Detail}, timeCol{&e.DispatchedAt}); err != nil {
		return nil, err
	}
	if e.Resources == nil {
		e.Resources = []string{}
	}
	return &e, nil
}

func (t *tx) AppendEvent(ctx context.Context, e *catalog.Event) error {
	const op = "catalog.AppendEvent"
	if err := e.Prepare(t.now); err != nil {
		return err
	}
	res, err := jsonArg(e.Resources)
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	// ON CONFLICT DO NOTHING keeps the transaction usable after a duplicate (see CreateJob).
	r, err := t.exec(ctx, op, `INSERT INTO events (`+eventCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING`,
		e.ID, e.Version, e.Source, e.DetailType, t.d.time(e.Time), e.Site, res, string(e.Detail),
		t.d.timePtr(e.DispatchedAt))
	if err != nil {
		return err
	}
	n, err := affected(op, r)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Errorf(op, errs.Exists, "event %s exists", e.ID)
	}
	return nil
}

func (t *tx) ListEvents(ctx context.Context, f catalog.EventFilter) ([]*catalog.Event, error) {
	const op = "catalog.ListEvents"
	if err := f.Validate(); err != nil {
		return nil, err
	}
	w := &where{}
	if f.Source != nil {
		w.add("source = " + w.arg(*f.Source))
	}
	if f.DetailType != nil {
		w.add("detail_type = " + w.arg(*f.DetailType))
	}
	if f.Since != nil {
		w.add("time >= " + w.arg(t.d.time(*f.Since)))
	}
	if f.Until != nil {
		w.add("time < " + w.arg(t.d.time(*f.Until)))
	}
	if f.Undispatched {
		w.add("dispatched_at IS NULL")
	}
	if f.After != "" {
		w.add("id > " + w.arg(f.After))
	}
	return queryAll(ctx, t, op, "SELECT "+eventCols+" FROM events"+w.String()+" ORDER BY id"+w.limit(f.Limit),
		w.args, scanEvent)
}

func (t *tx) MarkDispatched(ctx context.Context, ids []string) error {
	const op = "catalog.MarkDispatched"
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil
	}
	w := &where{}
	w.in("id", ids)
	found, err := queryAll(ctx, t, op, "SELECT id FROM events"+w.String(), w.args, func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return err
	}
	if len(found) != len(ids) {
		var missing []string
		for _, id := range ids {
			if !slices.Contains(found, id) {
				missing = append(missing, id)
			}
		}
		return errs.Errorf(op, errs.NotFound, "no event %s", strings.Join(missing, ", "))
	}
	w.add("dispatched_at IS NULL")
	_, err = t.exec(ctx, op, "UPDATE events SET dispatched_at = "+w.arg(t.d.time(t.now))+w.String(), w.args...)
	return err
}
