package catalogtest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// runRulesAlarms runs the tests of RulesAlarmsTx: rules stored through the API, their
// revision, and alarm states.
func runRulesAlarms(t *testing.T, open func(*testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, catalog.Store)
	}{
		{"EventRules", testEventRules},
		{"EventRulesInvalid", testEventRulesInvalid},
		{"EventRulesConcurrentPut", testEventRulesConcurrentPut},
		{"EventRulesRollback", testEventRulesRollback},
		{"AlarmStates", testAlarmStates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func revision(t *testing.T, s catalog.Store) int64 {
	t.Helper()
	var n int64
	tx(t, s, func(tx catalog.Tx) (err error) { n, err = tx.EventRulesRevision(ctx); return })
	return n
}

func testEventRules(t *testing.T, s catalog.Store) {
	if n := revision(t, s); n != 0 {
		t.Fatalf("revision of an empty catalog: %d, want 0", n)
	}
	spec := json.RawMessage(`{"pattern": {"source": ["rewind.backup"]}, "targets": [{"notify": "logger://"}]}`)
	r := &catalog.EventRule{Name: "failed-backups", Spec: spec}
	var created time.Time
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.PutEventRule(ctx, r); err != nil {
			return err
		}
		created = tx.Now()
		if !r.CreatedAt.Equal(created) || !r.UpdatedAt.Equal(created) {
			t.Fatalf("times not stamped: %+v (now %v)", r, created)
		}
		return tx.PutEventRule(ctx, &catalog.EventRule{Name: "another", Spec: json.RawMessage(`{"targets": []}`)})
	})
	r1 := revision(t, s)
	if r1 < 1 {
		t.Fatalf("revision after puts: %d", r1)
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetEventRule(ctx, "failed-backups")
		if err != nil {
			return err
		}
		var a, b any
		if json.Unmarshal(got.Spec, &a) != nil || json.Unmarshal(spec, &b) != nil {
			t.Fatalf("spec does not decode: %s", got.Spec)
		}
		same(t, "spec", a, b)
		if got.Name != r.Name || !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(created) {
			t.Fatalf("GetEventRule: %+v", got)
		}
		_, err = tx.GetEventRule(ctx, "nope")
		wantKind(t, "GetEventRule unknown", err, errs.NotFound)
		list, err := tx.ListEventRules(ctx)
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].Name != "another" || list[1].Name != "failed-backups" {
			t.Fatalf("ListEventRules: %+v", list)
		}
		return nil
	})

	// Replacing keeps CreatedAt and advances the revision.
	time.Sleep(2 * time.Millisecond) // the real clock must move for UpdatedAt to differ
	r2 := &catalog.EventRule{Name: "failed-backups", Spec: json.RawMessage(`{"disabled": true}`)}
	tx(t, s, func(tx catalog.Tx) error { return tx.PutEventRule(ctx, r2) })
	if !r2.CreatedAt.Equal(created) || !r2.UpdatedAt.After(created) {
		t.Fatalf("replaced rule: created %v updated %v, want created %v and a later update", r2.CreatedAt, r2.UpdatedAt, created)
	}
	rev2 := revision(t, s)
	if rev2 <= r1 {
		t.Fatalf("revision after replace: %d, want > %d", rev2, r1)
	}
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetEventRule(ctx, "failed-backups")
		if err != nil {
			return err
		}
		if string(got.Spec) != `{"disabled": true}` && string(got.Spec) != `{"disabled":true}` {
			t.Fatalf("replaced spec: %s", got.Spec)
		}
		return nil
	})

	// Deleting an unknown rule changes nothing; deleting a known one advances the revision.
	tx(t, s, func(tx catalog.Tx) error {
		wantKind(t, "DeleteEventRule unknown", tx.DeleteEventRule(ctx, "nope"), errs.NotFound)
		return nil
	})
	if n := revision(t, s); n != rev2 {
		t.Fatalf("revision after a failed delete: %d, want %d", n, rev2)
	}
	tx(t, s, func(tx catalog.Tx) error { return tx.DeleteEventRule(ctx, "failed-backups") })
	if n := revision(t, s); n <= rev2 {
		t.Fatalf("revision after delete: %d, want > %d", n, rev2)
	}
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetEventRule(ctx, "failed-backups")
		wantKind(t, "GetEventRule deleted", err, errs.NotFound)
		return nil
	})
}

func testEventRulesInvalid(t *testing.T, s catalog.Store) {
	tx(t, s, func(tx catalog.Tx) error {
		for what, bad := range map[string]*catalog.EventRule{
			"no name":      {Spec: json.RawMessage(`{}`)},
			"control char": {Name: "a\nb", Spec: json.RawMessage(`{}`)},
			"no spec":      {Name: "r"},
			"spec array":   {Name: "r", Spec: json.RawMessage(`[]`)},
			"spec invalid": {Name: "r", Spec: json.RawMessage(`{"a":`)},
			"spec huge":    {Name: "r", Spec: json.RawMessage(`{"a":"` + string(make([]byte, catalog.MaxEventRuleSpec)) + `"}`)},
		} {
			wantKind(t, "PutEventRule "+what, tx.PutEventRule(ctx, bad), errs.Invalid)
		}
		for what, bad := range map[string]*catalog.AlarmState{
			"no name":       {State: "OK", Since: time.Now()},
			"unknown state": {Name: "a", State: "FIRING", Since: time.Now()},
			"no time":       {Name: "a", State: "OK"},
		} {
			wantKind(t, "PutAlarmState "+what, tx.PutAlarmState(ctx, bad), errs.Invalid)
		}
		// The transaction is still usable and nothing was written.
		rules, err := tx.ListEventRules(ctx)
		if err != nil {
			return err
		}
		states, err := tx.ListAlarmStates(ctx)
		if err != nil {
			return err
		}
		if len(rules) != 0 || len(states) != 0 {
			t.Fatalf("after failed puts: %d rules, %d alarm states", len(rules), len(states))
		}
		return nil
	})
	if n := revision(t, s); n != 0 {
		t.Fatalf("revision after refused puts: %d, want 0", n)
	}
}

// testEventRulesConcurrentPut checks that concurrent puts all land and each advances the
// revision exactly once.
func testEventRulesConcurrentPut(t *testing.T, s catalog.Store) {
	const n = 8
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "rule-" + string(rune('a'+i))
			for {
				err := s.Tx(ctx, func(tx catalog.Tx) error {
					return tx.PutEventRule(ctx, &catalog.EventRule{Name: name, Spec: json.RawMessage(`{}`)})
				})
				if errs.Is(err, errs.Conflict) {
					continue // a serialization failure: Tx documents that the caller may retry
				}
				errc <- err
				return
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent put: %v", err)
		}
	}
	if got := revision(t, s); got != n {
		t.Fatalf("revision after %d puts: %d", n, got)
	}
	tx(t, s, func(tx catalog.Tx) error {
		list, err := tx.ListEventRules(ctx)
		if err != nil {
			return err
		}
		if len(list) != n {
			t.Fatalf("%d rules, want %d", len(list), n)
		}
		return nil
	})
}

func testEventRulesRollback(t *testing.T, s catalog.Store) {
	boom := errs.Errorf("test", errs.Internal, "roll back")
	err := s.Tx(ctx, func(tx catalog.Tx) error {
		if err := tx.PutEventRule(ctx, &catalog.EventRule{Name: "r", Spec: json.RawMessage(`{}`)}); err != nil {
			return err
		}
		if err := tx.PutAlarmState(ctx, &catalog.AlarmState{Name: "a", State: "ALARM", Since: time.Now()}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Tx: %v", err)
	}
	if n := revision(t, s); n != 0 {
		t.Fatalf("revision after rollback: %d", n)
	}
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetEventRule(ctx, "r")
		wantKind(t, "rolled-back rule", err, errs.NotFound)
		states, err := tx.ListAlarmStates(ctx)
		if err != nil {
			return err
		}
		if len(states) != 0 {
			t.Fatalf("rolled-back alarm state is stored: %+v", states)
		}
		return nil
	})
}

func testAlarmStates(t *testing.T, s catalog.Store) {
	since := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.PutAlarmState(ctx, &catalog.AlarmState{Name: "disk", State: "OK", Reason: "fine", Since: since}); err != nil {
			return err
		}
		return tx.PutAlarmState(ctx, &catalog.AlarmState{Name: "backup-age", State: "INSUFFICIENT_DATA", Since: since})
	})
	later := since.Add(time.Minute)
	var now time.Time
	tx(t, s, func(tx catalog.Tx) error {
		now = tx.Now()
		return tx.PutAlarmState(ctx, &catalog.AlarmState{Name: "disk", State: "ALARM", Reason: "full", Since: later})
	})
	tx(t, s, func(tx catalog.Tx) error {
		list, err := tx.ListAlarmStates(ctx)
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].Name != "backup-age" || list[1].Name != "disk" {
			t.Fatalf("ListAlarmStates: %+v", list)
		}
		d := list[1]
		want := catalog.Micro(later)
		if d.State != "ALARM" || d.Reason != "full" || !d.Since.Equal(want) || d.Since.Location() != time.UTC ||
			!d.UpdatedAt.Equal(now) {
			t.Fatalf("disk: %+v, want ALARM since %v updated %v", d, want, now)
		}
		return nil
	})
}
