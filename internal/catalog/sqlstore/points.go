package sqlstore

import (
	"context"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

const pointCols = `id, vault, resource, kind, time, host, paths, tags, parent, size_bytes, range_from, range_to,
	copied_from, state, created_at, deleted_at`

func scanPoint(r scanner) (*catalog.Point, error) {
	var p catalog.Point
	if err := r.Scan(&p.ID, &p.Vault, &p.Resource, &p.Kind, timeCol{&p.Time}, &p.Host, jsonCol{&p.Paths},
		jsonCol{&p.Tags}, &p.Parent, &p.SizeBytes, timeCol{&p.RangeFrom}, timeCol{&p.RangeTo}, &p.CopiedFrom,
		&p.State, timeCol{&p.CreatedAt}, timeCol{&p.DeletedAt}); err != nil {
		return nil, err
	}
	if len(p.Paths) == 0 {
		p.Paths = nil
	}
	if len(p.Tags) == 0 {
		p.Tags = nil
	}
	return &p, nil
}

func (t *tx) UpsertPoint(ctx context.Context, p *catalog.Point) error {
	const op = "catalog.UpsertPoint"
	if err := p.Prepare(t.now); err != nil {
		return err
	}
	paths := p.Paths
	if paths == nil {
		paths = []string{}
	}
	pathsJSON, err := jsonArg(paths)
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	tagsJSON, err := jsonArg(nonNilMap(p.Tags))
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	d := t.d
	// The row's created_at is kept from the first insert; the returned point shows it.
	var created timeCol = timeCol{&p.CreatedAt}
	err = t.tx.QueryRowContext(ctx, `INSERT INTO points (`+pointCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
	$10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO UPDATE SET vault = excluded.vault, resource = excluded.resource, kind = excluded.kind,
	time = excluded.time, host = excluded.host, paths = excluded.paths, tags = excluded.tags,
	parent = excluded.parent, size_bytes = excluded.size_bytes, range_from = excluded.range_from,
	range_to = excluded.range_to, copied_from = excluded.copied_from, state = excluded.state,
	deleted_at = excluded.deleted_at
RETURNING created_at`,
		p.ID, p.Vault, p.Resource, p.Kind, d.time(p.Time), p.Host, pathsJSON, tagsJSON, p.Parent, p.SizeBytes,
		d.timePtr(p.RangeFrom), d.timePtr(p.RangeTo), p.CopiedFrom, string(p.State), d.time(p.CreatedAt),
		d.timePtr(p.DeletedAt)).Scan(created)
	return classify(op, err)
}

func (t *tx) MarkPointDeleted(ctx context.Context, id string) (*catalog.Point, error) {
	const op = "catalog.MarkPointDeleted"
	if _, err := t.exec(ctx, op, "UPDATE points SET state = $2, deleted_at = $3 WHERE id = $1 AND state <> $2",
		id, string(catalog.PointDeleted), t.d.time(t.now)); err != nil {
		return nil, err
	}
	return t.getPoint(ctx, op, id)
}

func (t *tx) GetPoint(ctx context.Context, id string) (*catalog.Point, error) {
	return t.getPoint(ctx, "catalog.GetPoint", id)
}

func (t *tx) getPoint(ctx context.Context, op, id string) (*catalog.Point, error) {
	return queryOne(ctx, t, op, "point "+id, "SELECT "+pointCols+" FROM points WHERE id = $1", []any{id}, scanPoint)
}

func (t *tx) ListPoints(ctx context.Context, f catalog.PointFilter) ([]*catalog.Point, error) {
	const op = "catalog.ListPoints"
	if err := f.Validate(); err != nil {
		return nil, err
	}
	w, order := t.findPoints(f)
	return queryAll(ctx, t, op, "SELECT "+pointCols+" FROM points"+w.String()+order+w.limit(f.Limit), w.args, scanPoint)
}

// findPoints turns a validated filter into a WHERE clause and an ORDER BY.
func (t *tx) findPoints(f catalog.PointFilter) (*where, string) {
	w := &where{}
	for _, c := range []struct {
		col string
		v   *string
	}{{"vault", f.Vault}, {"resource", f.Resource}, {"kind", f.Kind}, {"host", f.Host}, {"parent", f.Parent},
		{"copied_from", f.CopiedFrom}} {
		if c.v != nil {
			w.add(c.col + " = " + w.arg(*c.v))
		}
	}
	if f.State != nil {
		w.add("state = " + w.arg(string(*f.State)))
	}
	if f.Since != nil {
		w.add("time >= " + w.arg(t.d.time(*f.Since)))
	}
	if f.Until != nil {
		w.add("time < " + w.arg(t.d.time(*f.Until)))
	}
	order := " ORDER BY time, id"
	cmp := ">"
	if f.Newest {
		order, cmp = " ORDER BY time DESC, id DESC", "<"
	}
	if f.After != "" {
		at, id, _ := catalog.ParsePointCursor(f.After) // validated by f.Validate
		w.add("(time, id) " + cmp + " (" + w.arg(t.d.time(at)) + ", " + w.arg(id) + ")")
	}
	return w, order
}
