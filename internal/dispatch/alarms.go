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
// alarms every few seconds and appends each state change to the outbox as an event
// (source rewind.monitor, detail-type "Alarm State Change"). Safe for concurrent use.
type Alarms struct {
	o     AlarmOptions
	eval  *alarm.Evaluator
	sched *monitor.Scheduler
	every time.Duration
	mu    sync.Mutex // serializes Evaluate, so that changes are appended in order
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
// probes stopped. A change that cannot be recorded (the catalog is down) is logged; the
// alarm keeps its new state, so the event is lost rather than repeated.
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

// Evaluate evaluates every alarm now and appends one outbox event per state change, in one
// transaction; it returns the changes. Errors are the catalog's.
func (a *Alarms) Evaluate(ctx context.Context) ([]alarm.Change, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	changes := a.eval.Evaluate(ctx, a.o.Now())
	if len(changes) == 0 {
		return nil, nil
	}
	err := a.o.Store.Tx(ctx, func(tx catalog.Tx) error {
		for _, c := range changes {
			e := &catalog.Event{Source: alarm.EventSource, DetailType: alarm.EventDetailType, Time: c.Time,
				Site: a.o.Site, Resources: []string{c.Alarm}, Detail: c.Detail()}
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	return changes, err
}
