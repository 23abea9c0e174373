package dispatch

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/monitor"
)

// Bounds of how often Alarms evaluates: at least every MaxEvaluateEvery, and as often as
// the shortest monitor interval or alarm period but not more than every MinEvaluateEvery.
const (
	MaxEvaluateEvery = 5 * time.Second
	MinEvaluateEvery = 200 * time.Millisecond
)

// AlarmOptions configures Alarms.
type AlarmOptions struct {
	Store    catalog.Store
	Monitors map[string]monitor.Spec
	Alarms   map[string]alarm.Spec
	// Gatherer is the server's own metrics registry, which metric: and math alarms read.
	Gatherer prometheus.Gatherer
	Site     string           // the site of the events
	Now      func() time.Time // time.Now when nil
	Log      *slog.Logger     // slog.Default() when nil
}

// Alarms runs the monitors, feeds their samples to the alarm evaluator, evaluates the
// alarms every few seconds and records each state change in the catalog: the alarm's new
// state and an outbox event (source rewind.monitor, detail-type "Alarm State Change"), in
// one transaction. The evaluator starts from the states stored by the previous run, so a
// restart announces only changes that happened. Safe for concurrent use.
type Alarms struct {
	o        AlarmOptions
	eval     *alarm.Evaluator
	sched    *monitor.Scheduler
	every    time.Duration
	mu       sync.Mutex // serializes Evaluate, so that changes are appended in order
	restored bool       // the stored states were loaded (guarded by mu)
}

// NewAlarms validates the monitors and alarms and returns them ready to Run. errs.Invalid
// lists every bad monitor or alarm.
func NewAlarms(o AlarmOptions) (*Alarms, error) {
	const op = "dispatch.NewAlarms"
	if o.Store == nil {
		return nil, errs.Errorf(op, errs.Invalid, "a catalog store is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	names := make([]string, 0, len(o.Monitors))
	for n := range o.Monitors {
		names = append(names, n)
	}
	sort.Strings(names)
	every := map[string]time.Duration{}
	var ms []*monitor.Monitor
	step := MaxEvaluateEvery
	for _, n := range names {
		m, err := monitor.New(n, o.Monitors[n])
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		every[n] = m.Spec().Every
		step = min(step, m.Spec().Every)
	}
	for _, s := range o.Alarms {
		if s.Period > 0 {
			step = min(step, s.Period)
		}
	}
	opts := []alarm.Option{alarm.WithMonitors(every)}
	if o.Gatherer != nil {
		opts = append(opts, alarm.WithGatherer(o.Gatherer))
	}
	eval, err := alarm.NewEvaluator(o.Alarms, o.Now, opts...)
	if err != nil {
		return nil, err
	}
	a := &Alarms{o: o, eval: eval, every: max(step, MinEvaluateEvery)}
	a.sched = monitor.NewScheduler(eval.Observe, ms...)
	return a, nil
}

// States lists every alarm's state, by name.
func (a *Alarms) States() []alarm.Status { return a.eval.States() }

// Run probes the monitors and evaluates the alarms until ctx ends, then returns once the
// probes stopped. A change that cannot be recorded (the catalog is down) is logged and
// found again by the next evaluation that still sees it (see Evaluate).
func (a *Alarms) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.sched.Run(ctx)
	}()
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
		if _, err := a.Evaluate(ctx); err != nil && ctx.Err() == nil {
			a.o.Log.Error("recording alarm state changes", "err", err)
		}
	}
}

// Restore loads the alarm states the catalog holds into the evaluator, once: later calls
// do nothing. Evaluate calls it first; calling it earlier makes the API show the stored
// states before the first evaluation. Errors are the catalog's (the states are then loaded
// at the next call) and errs.Corrupt for a stored state the evaluator refuses.
func (a *Alarms) Restore(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.restore(ctx)
}

func (a *Alarms) restore(ctx context.Context) error {
	if a.restored {
		return nil
	}
	var stored []*catalog.AlarmState
	if err := a.o.Store.Tx(ctx, func(tx catalog.Tx) (err error) { stored, err = tx.ListAlarmStates(ctx); return }); err != nil {
		return err
	}
	st := make([]alarm.Status, 0, len(stored))
	for _, s := range stored {
		st = append(st, alarm.Status{Name: s.Name, State: alarm.State(s.State), Reason: s.Reason, Since: s.Since})
	}
	if err := a.eval.Restore(st); err != nil {
		return errs.E("dispatch.Alarms", errs.Corrupt, err).WithHint("the catalog's alarm_states table holds a state this version does not know")
	}
	a.restored = true
	return nil
}

// Evaluate evaluates every alarm now (after Restore) and records every state change in
// one transaction: the alarm's stored state and one outbox event per change. It returns
// the changes. Errors are the catalog's; when the changes cannot be recorded, the
// evaluator is put back to the states before them, so that the next evaluation finds
// them again (announced late rather than lost, and never twice).
func (a *Alarms) Evaluate(ctx context.Context) ([]alarm.Change, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.restore(ctx); err != nil {
		return nil, err
	}
	changes := a.eval.Evaluate(ctx, a.o.Now())
	if len(changes) == 0 {
		return nil, nil
	}
	err := a.o.Store.Tx(ctx, func(tx catalog.Tx) error {
		for _, c := range changes {
			s := &catalog.AlarmState{Name: c.Alarm, State: string(c.Current), Reason: c.Reason, Since: c.Time}
			if err := tx.PutAlarmState(ctx, s); err != nil {
				return err
			}
			e := &catalog.Event{Source: alarm.EventSource, DetailType: alarm.EventDetailType, Time: c.Time,
				Site: a.o.Site, Resources: []string{c.Alarm}, Detail: c.Detail()}
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		back := make([]alarm.Status, 0, len(changes))
		for _, c := range changes {
			back = append(back, alarm.Status{Name: c.Alarm, State: c.Previous, Reason: c.PreviousReason, Since: c.PreviousSince})
		}
		if rerr := a.eval.Restore(back); rerr != nil {
			a.o.Log.Error("putting the alarms back after a failed write", "err", rerr)
		}
		return nil, err
	}
	return changes, nil
}
