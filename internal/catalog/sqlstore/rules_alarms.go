package sqlstore

import (
	"context"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

const eventRuleCols = "name, spec, created_at, updated_at"

func scanEventRule(r scanner) (*catalog.EventRule, error) {
	var er catalog.EventRule
	err := r.Scan(&er.Name, jsonCol{&er.Spec}, timeCol{&er.CreatedAt}, timeCol{&er.UpdatedAt})
	return &er, err
}

// bumpRulesRevision advances the rules' revision. The UPDATE locks the one revision row
// until the transaction ends, so puts and deletes of rules serialize on it.
func (t *tx) bumpRulesRevision(ctx context.Context, op string) error {
	_, err := t.exec(ctx, op, "UPDATE event_rules_revision SET revision = revision + 1 WHERE id = 1")
	return err
}

func (t *tx) PutEventRule(ctx context.Context, r *catalog.EventRule) error {
	const op = "catalog.PutEventRule"
	if err := r.Prepare(t.now); err != nil {
		return err
	}
	// The revision row is locked first: two servers putting the same rule then take turns
	// instead of deadlocking on the rule row and the revision row in opposite orders.
	if err := t.bumpRulesRevision(ctx, op); err != nil {
		return err
	}
	if _, err := t.exec(ctx, op, `INSERT INTO event_rules (`+eventRuleCols+`) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		r.Name, string(r.Spec), t.d.time(r.CreatedAt), t.d.time(r.UpdatedAt)); err != nil {
		return err
	}
	got, err := t.GetEventRule(ctx, r.Name)
	if err != nil {
		return err
	}
	r.CreatedAt = got.CreatedAt
	return nil
}

func (t *tx) GetEventRule(ctx context.Context, name string) (*catalog.EventRule, error) {
	return queryOne(ctx, t, "catalog.GetEventRule", "rule "+name,
		"SELECT "+eventRuleCols+" FROM event_rules WHERE name = $1", []any{name}, scanEventRule)
}

func (t *tx) ListEventRules(ctx context.Context) ([]*catalog.EventRule, error) {
	return queryAll(ctx, t, "catalog.ListEventRules", "SELECT "+eventRuleCols+" FROM event_rules ORDER BY name",
		nil, scanEventRule)
}

func (t *tx) DeleteEventRule(ctx context.Context, name string) error {
	const op = "catalog.DeleteEventRule"
	res, err := t.exec(ctx, op, "DELETE FROM event_rules WHERE name = $1", name)
	if err != nil {
		return err
	}
	n, err := affected(op, res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Errorf(op, errs.NotFound, "rule %s not found", name)
	}
	return t.bumpRulesRevision(ctx, op)
}

func (t *tx) EventRulesRevision(ctx context.Context) (int64, error) {
	return queryOne(ctx, t, "catalog.EventRulesRevision", "the rules' revision",
		"SELECT revision FROM event_rules_revision WHERE id = 1", nil, func(r scanner) (int64, error) {
			var n int64
			return n, r.Scan(&n)
		})
}

const alarmStateCols = "name, state, reason, since, updated_at"

func scanAlarmState(r scanner) (*catalog.AlarmState, error) {
	var s catalog.AlarmState
	err := r.Scan(&s.Name, &s.State, &s.Reason, timeCol{&s.Since}, timeCol{&s.UpdatedAt})
	return &s, err
}

func (t *tx) PutAlarmState(ctx context.Context, s *catalog.AlarmState) error {
	const op = "catalog.PutAlarmState"
	if err := s.Prepare(t.now); err != nil {
		return err
	}
	_, err := t.exec(ctx, op, `INSERT INTO alarm_states (`+alarmStateCols+`) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since,
	updated_at = excluded.updated_at`,
		s.Name, s.State, s.Reason, t.d.time(s.Since), t.d.time(s.UpdatedAt))
	return err
}

func (t *tx) ListAlarmStates(ctx context.Context) ([]*catalog.AlarmState, error) {
	return queryAll(ctx, t, "catalog.ListAlarmStates", "SELECT "+alarmStateCols+" FROM alarm_states ORDER BY name",
		nil, scanAlarmState)
}
