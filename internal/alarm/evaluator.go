package alarm

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/monitor"
)

// The event every Change becomes, as in CloudWatch's EventBridge events.
const (
	EventSource     = "rewind.monitor"
	EventDetailType = "Alarm State Change"
)

// Change is one alarm's transition.
type Change struct {
	Alarm          string          `json:"alarm"`
	Previous       State           `json:"previous"`
	Current        State           `json:"current"`
	Reason         string          `json:"reason"`
	ReasonData     json.RawMessage `json:"reasonData"`
	PreviousReason string          `json:"previousReason"`
	PreviousSince  time.Time       `json:"previousSince"`
	Time           time.Time       `json:"time"`
}

// Detail returns the event detail for the change, shaped like CloudWatch's "Alarm State
// Change" detail: alarmName, state and previousState, each with value, reason and
// timestamp.
func (c Change) Detail() json.RawMessage {
	type state struct {
		Value      State           `json:"value"`
		Reason     string          `json:"reason"`
		ReasonData json.RawMessage `json:"reasonData,omitempty"`
		Timestamp  time.Time       `json:"timestamp"`
	}
	b, _ := json.Marshal(struct {
		AlarmName     string `json:"alarmName"`
		State         state  `json:"state"`
		PreviousState state  `json:"previousState"`
	}{
		AlarmName:     c.Alarm,
		State:         state{c.Current, c.Reason, c.ReasonData, c.Time.UTC()},
		PreviousState: state{Value: c.Previous, Reason: c.PreviousReason, Timestamp: c.PreviousSince.UTC()},
	})
	return b
}

// Status is an alarm's current state, for listing.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
	LastError string    `json:"lastError,omitempty"` // the last failure to fetch its metric
}

// Option configures an Evaluator.
type Option func(*Evaluator)

// WithGatherer makes metric: and math alarms read g (Rewind's registry) at every
// Evaluate. Without it they only see values passed to ObserveMetric.
func WithGatherer(g prometheus.Gatherer) Option { return func(e *Evaluator) { e.gatherer = g } }

// WithHTTPClient sets the client for prometheus: alarms (default: one with a 10s timeout).
func WithHTTPClient(c *http.Client) Option { return func(e *Evaluator) { e.client = c } }

// WithMonitors names the monitors that exist and their intervals: a monitor alarm must
// name one of them, and its Period defaults to the monitor's interval. Without it monitor
// names are not checked and the default period is DefaultPeriod.
func WithMonitors(every map[string]time.Duration) Option {
	return func(e *Evaluator) { e.monitors = every }
}

// Evaluator holds alarms and their states. It is safe for concurrent use.
type Evaluator struct {
	clock    func() time.Time
	gatherer prometheus.Gatherer
	client   *http.Client
	monitors map[string]time.Duration

	order  []*alarmState // children before the composites that use them
	byName map[string]*alarmState

	mu     sync.Mutex
	series map[string]*series // "monitor:<name>" or "alarm:<name>"
}

type alarmState struct {
	name string
	spec Spec // with defaults
	key  string
	cmp  Comparison
	rule *Rule
	sel  Selector
	math *mathProgram

	state      State
	reason     string
	reasonData json.RawMessage
	since      time.Time
	lastErr    string
}

// NewEvaluator validates specs and returns an evaluator with every alarm in
// INSUFFICIENT_DATA. clock (time.Now when nil) stamps samples without a time. Invalid
// specs, unknown references and cycles among composite alarms are one errs.Invalid error
// listing every problem.
func NewEvaluator(specs map[string]Spec, clock func() time.Time, opts ...Option) (*Evaluator, error) {
	if clock == nil {
		clock = time.Now
	}
	e := &Evaluator{
		clock:  clock,
		client: &http.Client{Timeout: 10 * time.Second},
		byName: map[string]*alarmState{},
		series: map[string]*series{},
	}
	for _, o := range opts {
		o(e)
	}
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	var p problems
	now := clock()
	for _, name := range names {
		s := specs[name]
		if name == "" {
			p.add("an alarm has no name")
			continue
		}
		if err := s.Validate(); err != nil {
			p.add("alarm %s: %s", name, strings.TrimPrefix(err.Error(), "alarm.Validate: "))
			continue
		}
		if s.Monitor != "" && s.Period == 0 {
			if every, ok := e.monitors[s.Monitor]; ok {
				s.Period = every
			}
		}
		a := &alarmState{name: name, spec: s.withDefaults(), state: StateInsufficient,
			reason: "Unchecked: Initial alarm creation", since: now}
		switch {
		case s.Composite != "":
			a.rule, _ = ParseRule(s.Composite)
		case s.Monitor != "":
			a.key = "monitor:" + s.Monitor
			if e.monitors != nil {
				if _, ok := e.monitors[s.Monitor]; !ok {
					p.add("alarm %s: monitor %q does not exist", name, s.Monitor)
				}
			}
		default:
			a.key = "alarm:" + name
		}
		if a.spec.Threshold != "" {
			a.cmp, _ = ParseThreshold(a.spec.Threshold)
		}
		if s.Metric != "" {
			a.sel, _ = ParseSelector(s.Metric)
		}
		if s.Expression != nil {
			m, err := compileMath(s.Expression)
			if err != nil {
				p.add("alarm %s: math: %v", name, err)
				continue
			}
			a.math = m
		}
		e.byName[name] = a
	}
	for _, name := range names {
		if a := e.byName[name]; a != nil && a.rule != nil {
			for _, child := range a.rule.Alarms() {
				if _, ok := specs[child]; !ok {
					p.add("alarm %s: its rule names alarm %q, which does not exist", name, child)
				}
			}
		}
	}
	if len(p) == 0 {
		order, err := e.sort(names)
		if err != nil {
			p.add("%v", err)
		}
		e.order = order
	}
	if err := p.err("alarm.NewEvaluator"); err != nil {
		return nil, errs.E("alarm.NewEvaluator", errs.Invalid, err).WithHint("fix the alarms in the configuration")
	}
	return e, nil
}

// sort orders alarms so that every composite comes after the alarms it names, refusing
// cycles.
func (e *Evaluator) sort(names []string) ([]*alarmState, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	mark := map[string]int{}
	var order []*alarmState
	var path []string
	var visit func(string) error
	visit = func(n string) error {
		switch mark[n] {
		case done:
			return nil
		case visiting:
			i := 0
			for path[i] != n {
				i++
			}
			return fmt.Errorf("composite alarms form a cycle: %s -> %s", strings.Join(path[i:], " -> "), n)
		}
		mark[n] = visiting
		path = append(path, n)
		a := e.byName[n]
		if a.rule != nil {
			for _, c := range a.rule.Alarms() {
				if err := visit(c); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		order = append(order, a)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (e *Evaluator) seriesFor(key string) *series {
	s := e.series[key]
	if s == nil {
		s = &series{}
		e.series[key] = s
	}
	return s
}

// Observe records a monitor sample: a datapoint 0 when healthy, 1 when not. Samples of
// monitors no alarm watches are dropped.
func (e *Evaluator) Observe(s monitor.Sample) {
	key := "monitor:" + s.Monitor
	e.mu.Lock()
	defer e.mu.Unlock()
	watched := false
	for _, a := range e.order {
		if a.key == key {
			watched = true
			break
		}
	}
	if !watched {
		return
	}
	t := s.Time
	if t.IsZero() {
		t = e.clock()
	}
	v := 1.0
	if s.Healthy {
		v = 0
	}
	ser := e.seriesFor(key)
	ser.add(t, v)
	ser.detail = s.Detail
}

// ObserveMetric records a value of the metric alarm named alarm (a metric, prometheus or
// math alarm) at t. Unknown alarms and alarms of other kinds are errs.NotFound and
// errs.Invalid errors; a non-finite value is errs.Invalid.
func (e *Evaluator) ObserveMetric(alarm string, t time.Time, v float64) error {
	a := e.byName[alarm]
	switch {
	case a == nil:
		return errs.Errorf("alarm.ObserveMetric", errs.NotFound, "no alarm %q", alarm)
	case a.key != "alarm:"+alarm:
		return errs.Errorf("alarm.ObserveMetric", errs.Invalid, "alarm %q is not a metric alarm", alarm).
			WithHint("monitor alarms take samples through Observe; composite alarms take no data")
	case math.IsNaN(v) || math.IsInf(v, 0):
		return errs.Errorf("alarm.ObserveMetric", errs.Invalid, "alarm %q: value %v is not a finite number", alarm, v)
	}
	if t.IsZero() {
		t = e.clock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seriesFor(a.key).add(t, v)
	return nil
}

// fetched is one metric value read during Evaluate.
type fetched struct {
	ok  bool
	v   float64
	why string // why there is no value, when !ok
	err error
}

// fetch reads the current values of the alarms with a pollable source. It runs without
// the lock: alarm specs are immutable.
func (e *Evaluator) fetch(ctx context.Context) map[*alarmState]fetched {
	out := map[*alarmState]fetched{}
	var fams []*dto.MetricFamily
	var gatherErr error
	gathered := false
	for _, a := range e.order {
		switch {
		case a.spec.Metric != "" && e.gatherer != nil:
			if !gathered {
				// One gathering serves every metric alarm of the pass.
				fams, gatherErr = e.gatherer.Gather()
				gathered = true
			}
			if gatherErr != nil {
				out[a] = fetched{err: fmt.Errorf("gathering metrics: %v", gatherErr)}
				continue
			}
			sum, n := a.sel.Eval(fams)
			out[a] = fetched{ok: n > 0, v: sum, why: "no series matches " + a.sel.String()}
		case a.math != nil && e.gatherer != nil:
			v, ok, why, err := a.math.eval(e.gatherer)
			out[a] = fetched{ok: ok, v: v, why: why, err: err}
		case a.spec.Prometheus != nil:
			v, ok, err := QueryPrometheus(ctx, e.client, a.spec.Prometheus.URL, a.spec.Prometheus.Query)
			out[a] = fetched{ok: ok, v: v, why: "the query returned no series", err: err}
		}
	}
	return out
}

// Evaluate reads the alarms' metric sources, evaluates every alarm at now (composites
// after the alarms they name) and returns the transitions, in evaluation order. Failures
// to read a source are not errors: the period has no datapoint and Status.LastError says
// why.
func (e *Evaluator) Evaluate(ctx context.Context, now time.Time) []Change {
	values := e.fetch(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	var changes []Change
	for _, a := range e.order {
		if f, ok := values[a]; ok {
			switch {
			case f.err != nil:
				a.lastErr = f.err.Error()
			case !f.ok:
				a.lastErr = f.why
			default:
				a.lastErr = ""
				e.seriesFor(a.key).add(now, f.v)
			}
		}
		var next State
		var reason string
		var data json.RawMessage
		if a.rule != nil {
			next, reason, data = e.evalComposite(a, now)
		} else {
			var keep bool
			next, keep, reason, data = e.evalMetric(a, now)
			if keep {
				continue
			}
		}
		if next == a.state {
			// CloudWatch keeps the reason of the last transition.
			continue
		}
		changes = append(changes, Change{
			Alarm: a.name, Previous: a.state, Current: next, Reason: reason, ReasonData: data,
			PreviousReason: a.reason, PreviousSince: a.since, Time: now,
		})
		a.state, a.reason, a.reasonData, a.since = next, reason, data, now
	}
	return changes
}

// States lists every alarm's state, sorted by name.
func (e *Evaluator) States() []Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Status, 0, len(e.order))
	for _, a := range e.order {
		out = append(out, Status{Name: a.name, State: a.state, Reason: a.reason, Since: a.since, LastError: a.lastErr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (e *Evaluator) evalComposite(a *alarmState, now time.Time) (State, string, json.RawMessage) {
	children := map[string]State{}
	get := func(n string) State {
		s := e.byName[n].state
		children[n] = s
		return s
	}
	ok := a.rule.Eval(get)
	for _, n := range a.rule.Alarms() {
		get(n)
	}
	names := a.rule.Alarms()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " is " + string(children[n])
	}
	truth := "false"
	if ok {
		truth = "true"
	}
	reason := fmt.Sprintf("Composite rule %s is %s: %s.", a.rule.String(), truth, strings.Join(parts, ", "))
	data := reasonData{Version: "1.0", QueryDate: now.UTC(), Rule: a.rule.String(), Children: children}
	return pick(ok), reason, data.marshal()
}

// evalMetric evaluates a monitor or metric alarm.
func (e *Evaluator) evalMetric(a *alarmState, now time.Time) (next State, keep bool, reason string, data json.RawMessage) {
	s := a.spec
	p := s.Period
	n, m := s.EvaluationPeriods, s.DatapointsToAlarm
	r := n + 2 // the evaluation range
	ser := e.seriesFor(a.key)
	retain := time.Duration(r+1) * p
	if s.AnomalyBand != nil {
		retain += s.AnomalyBand.Training
	}
	// Monitor series are shared: prune only what no alarm can need.
	if !strings.HasPrefix(a.key, "monitor:") {
		ser.prune(now.Add(-retain))
	} else {
		e.pruneMonitor(a.key, now)
	}
	cur := periodStart(now, p)
	end := cur.Add(p)
	if !ser.has(cur, now) {
		// The period in progress counts once it holds a sample.
		end = cur
	}
	start := end.Add(-time.Duration(r) * p)
	window := ser.datapoints(start, end, p, s.Statistic)
	// Samples after now are not part of this evaluation.
	window = clipFuture(ser, window, now, p, s.Statistic)

	rd := reasonData{Version: "1.0", QueryDate: now.UTC(), StartDate: start, Statistic: s.Statistic,
		Period: p.Seconds(), MissingData: s.MissingData, Error: a.lastErr}
	breach := a.cmp.Breaches
	var bandText string
	if b := s.AnomalyBand; b != nil {
		hist := ser.datapoints(periodStart(start.Add(-b.Training), p), start, p, s.Statistic)
		var vals []float64
		for _, d := range hist {
			if d.Count > 0 {
				vals = append(vals, d.Value)
			}
		}
		if len(vals) < b.MinSamples {
			reason = fmt.Sprintf("Insufficient Data: the anomaly band needs %s of history in the %v before the evaluation range, has %d.",
				plural(b.MinSamples, "datapoint", "datapoints"), b.Training, len(vals))
			return StateInsufficient, false, reason, rd.marshal()
		}
		mean, sd := meanStd(vals)
		lo, hi := mean-b.Deviations*sd, mean+b.Deviations*sd
		breach = func(v float64) bool { return v < lo || v > hi }
		rd.Band = &bandData{Lower: lo, Upper: hi, Mean: mean, StdDev: sd, Deviations: b.Deviations, Samples: len(vals)}
		bandText = fmt.Sprintf("the band (%s to %s: mean %s ± %s × stddev %s over %s)", formatValue(lo), formatValue(hi),
			formatValue(mean), formatValue(b.Deviations), formatValue(sd), plural(len(vals), "datapoint", "datapoints"))
	} else {
		t := a.cmp.Value
		rd.Threshold = &t
		rd.ComparisonOperator = a.cmp.Op
	}
	v := decide(window, n, m, s.MissingData, breach)
	for _, d := range v.used {
		rd.RecentDatapoints = append(rd.RecentDatapoints, d.Value)
		rd.EvaluatedDatapoints = append(rd.EvaluatedDatapoints, evaluatedPoint{Timestamp: d.Start, SampleCount: d.Count, Value: d.Value})
	}
	rd.FilledDatapoints = v.filled
	if v.keep {
		return "", true, "", nil
	}
	return v.state, false, e.reason(a, v, bandText, r), rd.marshal()
}

// reason words a verdict as CloudWatch does.
func (e *Evaluator) reason(a *alarmState, v verdict, band string, r int) string {
	s := a.spec
	n, m := s.EvaluationPeriods, s.DatapointsToAlarm
	var b strings.Builder
	if v.state == StateInsufficient {
		fmt.Fprintf(&b, "Insufficient Data: no datapoints were received for the last %s (%v).", plural(r, "period", "periods"), time.Duration(r)*s.Period)
		if a.lastErr != "" {
			fmt.Fprintf(&b, " Last error: %s.", a.lastErr)
		}
		return b.String()
	}
	crossed := "Threshold Crossed"
	what := fmt.Sprintf("the threshold (%s)", formatValue(a.cmp.Value))
	verb := a.cmp.words()
	if band != "" {
		crossed, what, verb = "Thresholds Crossed", band, "outside"
	}
	k := len(v.used)
	if v.state == StateAlarm {
		fmt.Fprintf(&b, "%s: %d out of the last %d datapoints %s %s %s %s", crossed, v.breaching, n,
			datapointList(v.used), were(v.breaching), verb, what)
		fmt.Fprintf(&b, " (minimum %s for %s -> ALARM transition).", plural(m, "datapoint", "datapoints"), a.state)
	} else {
		fmt.Fprintf(&b, "%s: %d out of the last %d datapoints %s %s not %s %s", crossed, k-v.breaching, n,
			datapointList(v.used), were(k-v.breaching), verb, what)
		fmt.Fprintf(&b, " (minimum %s for ALARM, %d breaching).", plural(m, "breaching datapoint", "breaching datapoints"), v.breaching)
	}
	if v.filled > 0 {
		treated := map[string]string{MissingBreaching: "Breaching", MissingNotBreaching: "NonBreaching"}[s.MissingData]
		if treated == "" {
			treated = "Missing"
		}
		fmt.Fprintf(&b, " %s treated as [%s].", plural(v.filled, "missing datapoint was", "missing datapoints were"), treated)
	}
	if v.premature {
		b.WriteString(" The newest breaching run is followed only by missing datapoints.")
	}
	if strings.HasPrefix(a.key, "monitor:") {
		if d := e.series[a.key].detail; d != "" {
			fmt.Fprintf(&b, " Latest sample: %s.", strings.TrimSuffix(d, "."))
		}
	}
	if a.lastErr != "" {
		fmt.Fprintf(&b, " Last error: %s.", a.lastErr)
	}
	return b.String()
}

func were(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// pruneMonitor drops the samples of a shared monitor series that no alarm on it needs.
func (e *Evaluator) pruneMonitor(key string, now time.Time) {
	var keep time.Duration
	for _, a := range e.order {
		if a.key == key {
			keep = max(keep, time.Duration(a.spec.EvaluationPeriods+3)*a.spec.Period)
		}
	}
	e.series[key].prune(now.Add(-keep))
}

// has reports whether s holds a sample in [from, to].
func (s *series) has(from, to time.Time) bool {
	i := sort.Search(len(s.points), func(i int) bool { return !s.points[i].t.Before(from) })
	return i < len(s.points) && !s.points[i].t.After(to)
}

func hasFuture(s *series, now time.Time) bool {
	return len(s.points) > 0 && s.points[len(s.points)-1].t.After(now)
}

// clipFuture recomputes the newest datapoint without samples later than now.
func clipFuture(s *series, w []datapoint, now time.Time, p time.Duration, stat string) []datapoint {
	if !hasFuture(s, now) || len(w) == 0 {
		return w
	}
	last := &w[len(w)-1]
	var vs []float64
	for _, pt := range s.points {
		if !pt.t.Before(last.Start) && !pt.t.After(now) && pt.t.Before(last.Start.Add(p)) {
			vs = append(vs, pt.v)
		}
	}
	last.Count = len(vs)
	last.Value = 0
	if len(vs) > 0 {
		last.Value = aggregate(stat, vs)
	}
	return w
}

func meanStd(vs []float64) (mean, sd float64) {
	for _, v := range vs {
		mean += v
	}
	mean /= float64(len(vs))
	for _, v := range vs {
		sd += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(sd / float64(len(vs)))
}
