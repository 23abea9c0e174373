package dispatch_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/errs"
)

// flakyStore fails every transaction while down is set, as an unreachable database.
type flakyStore struct {
	catalog.Store
	down atomic.Bool
}

func (f *flakyStore) Tx(ctx context.Context, fn func(catalog.Tx) error) error {
	if f.down.Load() {
		return errs.Errorf("catalog.Tx", errs.Unavailable, "the database is unreachable")
	}
	return f.Store.Tx(ctx, fn)
}

// alarmEnv is one server's alarms over a gauge: "queue" is in ALARM above 5.
type alarmEnv struct {
	gauge prometheus.Gauge
	reg   *prometheus.Registry
}

func newAlarmEnv(t *testing.T) *alarmEnv {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_queue_length"})
	reg.MustRegister(g)
	return &alarmEnv{gauge: g, reg: reg}
}

func (e *alarmEnv) start(t *testing.T, s catalog.Store, c *clock) *dispatch.Alarms {
	t.Helper()
	a, err := dispatch.NewAlarms(dispatch.AlarmOptions{Store: s, Gatherer: e.reg, Now: c.Now, Site: "primary",
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Alarms: map[string]alarm.Spec{"queue": {Metric: "test_queue_length", Threshold: "> 5", Period: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func alarmEvents(t *testing.T, s catalog.Store) []*catalog.Event {
	t.Helper()
	var evs []*catalog.Event
	err := s.Tx(ctx, func(tx catalog.Tx) (err error) {
		evs, err = tx.ListEvents(ctx, catalog.EventFilter{Source: catalog.Ptr(alarm.EventSource)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func storedStates(t *testing.T, s catalog.Store) []*catalog.AlarmState {
	t.Helper()
	var out []*catalog.AlarmState
	if err := s.Tx(ctx, func(tx catalog.Tx) (err error) { out, err = tx.ListAlarmStates(ctx); return }); err != nil {
		t.Fatal(err)
	}
	return out
}

func evaluate(t *testing.T, a *dispatch.Alarms) []alarm.Change {
	t.Helper()
	ch, err := a.Evaluate(ctx)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return ch
}

func TestAlarmStatePersists(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	env := newAlarmEnv(t)
	env.gauge.Set(10)

	first := env.start(t, s, c)
	ch := evaluate(t, first)
	raisedAt := c.Now()
	if len(ch) != 1 || ch[0].Current != alarm.StateAlarm || ch[0].Previous != alarm.StateInsufficient {
		t.Fatalf("first evaluation: %+v", ch)
	}
	st := storedStates(t, s)
	if len(st) != 1 || st[0].Name != "queue" || st[0].State != "ALARM" || !st[0].Since.Equal(raisedAt) || st[0].Reason != ch[0].Reason {
		t.Fatalf("stored states: %+v", st)
	}
	if evs := alarmEvents(t, s); len(evs) != 1 || evs[0].Site != "primary" || evs[0].Resources[0] != "queue" {
		t.Fatalf("events: %+v", evs)
	}

	// A restart: a new evaluator over the same catalog announces nothing while the alarm
	// holds, and shows the stored state from the start.
	c.Add(10 * time.Minute)
	second := env.start(t, s, c)
	if err := second.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if got := second.States(); len(got) != 1 || got[0].State != alarm.StateAlarm || !got[0].Since.Equal(raisedAt) {
		t.Fatalf("states after restart: %+v", got)
	}
	if ch := evaluate(t, second); len(ch) != 0 {
		t.Fatalf("a restart announced %+v", ch)
	}
	if evs := alarmEvents(t, s); len(evs) != 1 {
		t.Fatalf("%d events after the restart, want 1", len(evs))
	}

	// A real change is announced from the stored state.
	c.Add(time.Minute)
	env.gauge.Set(1)
	ch = evaluate(t, second)
	if len(ch) != 1 || ch[0].Previous != alarm.StateAlarm || ch[0].Current != alarm.StateOK || !ch[0].PreviousSince.Equal(raisedAt) {
		t.Fatalf("change after restart: %+v", ch)
	}
	evs := alarmEvents(t, s)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	var detail struct {
		State         struct{ Value string }
		PreviousState struct {
			Value     string
			Timestamp time.Time
		}
	}
	if err := json.Unmarshal(evs[1].Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if detail.State.Value != "OK" || detail.PreviousState.Value != "ALARM" || !detail.PreviousState.Timestamp.Equal(raisedAt) {
		t.Errorf("event detail: %s", evs[1].Detail)
	}
	if st := storedStates(t, s); st[0].State != "OK" || !st[0].Since.Equal(c.Now()) {
		t.Errorf("stored after the change: %+v", st[0])
	}
}

// TestAlarmChangeRetriedAfterFailure checks that a change the catalog could not record is
// recorded by the next evaluation, once.
func TestAlarmChangeRetriedAfterFailure(t *testing.T) {
	c := newClock()
	base := openStore(t, c)
	s := &flakyStore{Store: base}
	env := newAlarmEnv(t)
	env.gauge.Set(10)
	a := env.start(t, s, c)

	// The stored states cannot be loaded: nothing is evaluated.
	s.down.Store(true)
	if _, err := a.Evaluate(ctx); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Evaluate with the catalog down: %v", err)
	}
	s.down.Store(false)
	if err := a.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	// The change cannot be written: the evaluator goes back.
	s.down.Store(true)
	if _, err := a.Evaluate(ctx); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Evaluate with the catalog down: %v", err)
	}
	if st := a.States(); st[0].State != alarm.StateInsufficient {
		t.Fatalf("state after a failed write: %+v", st)
	}
	s.down.Store(false)
	c.Add(time.Second)
	ch := evaluate(t, a)
	if len(ch) != 1 || ch[0].Current != alarm.StateAlarm {
		t.Fatalf("retried change: %+v", ch)
	}
	if ch := evaluate(t, a); len(ch) != 0 {
		t.Fatalf("change announced twice: %+v", ch)
	}
	if evs := alarmEvents(t, base); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
}
