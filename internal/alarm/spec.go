package alarm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Defaults for a Spec's zero fields.
const (
	DefaultPeriod     = time.Minute
	DefaultDeviations = 2.0
	DefaultTraining   = 14 * 24 * time.Hour
	DefaultMinSamples = 10
)

// Missing-data treatments.
const (
	MissingMissing      = "missing"
	MissingNotBreaching = "notBreaching"
	MissingBreaching    = "breaching"
	MissingIgnore       = "ignore"
)

// Statistics that aggregate a period's samples into one datapoint.
const (
	Average     = "Average"
	Minimum     = "Minimum"
	Maximum     = "Maximum"
	Sum         = "Sum"
	SampleCount = "SampleCount"
)

// Spec describes one alarm. Exactly one of Monitor, Metric, Prometheus, Expression and
// Composite is its source.
type Spec struct {
	// Monitor names a monitor: each sample is a datapoint 0 (healthy) or 1 (failed), and
	// the threshold is "> 0" unless set.
	Monitor string `yaml:"monitor,omitempty" json:"monitor,omitempty"`
	// Metric is a series selector over Rewind's own registry, name{label="v",…}; the
	// values of the matching series are summed.
	Metric string `yaml:"metric,omitempty" json:"metric,omitempty"`
	// Prometheus is an instant query against a Prometheus server.
	Prometheus *PromQuery `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`
	// Expression is metric math over named selectors.
	Expression *Math `yaml:"math,omitempty" json:"math,omitempty"`
	// Composite is a rule over other alarms' states, such as
	// "ALARM(shop-down) AND NOT ALARM(maintenance)".
	Composite string `yaml:"composite,omitempty" json:"composite,omitempty"`

	// Threshold is an operator and a number: "> 300", ">= 5", "< 1", "<= 0".
	Threshold string `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	// Statistic aggregates a period's samples: Average (default), Minimum, Maximum, Sum,
	// SampleCount.
	Statistic string `yaml:"statistic,omitempty" json:"statistic,omitempty"`
	// Period is the length of one datapoint (DefaultPeriod; for a monitor alarm the
	// monitor's interval, set by the caller).
	Period time.Duration `yaml:"period,omitempty" json:"period,omitempty"`
	// EvaluationPeriods is N, the number of most recent periods considered (default 1).
	EvaluationPeriods int `yaml:"evaluation_periods,omitempty" json:"evaluation_periods,omitempty"`
	// DatapointsToAlarm is M, the breaching datapoints among N that mean ALARM (default N).
	DatapointsToAlarm int `yaml:"datapoints_to_alarm,omitempty" json:"datapoints_to_alarm,omitempty"`
	// MissingData is the treatment of missing datapoints: missing (default),
	// notBreaching, breaching, ignore.
	MissingData string `yaml:"missing_data,omitempty" json:"missing_data,omitempty"`
	// AnomalyBand replaces Threshold with a band learned from the metric's history.
	AnomalyBand *Band `yaml:"anomaly_band,omitempty" json:"anomaly_band,omitempty"`
}

// PromQuery is an instant query (/api/v1/query) whose result is a scalar or a vector of
// exactly one element.
type PromQuery struct {
	URL   string `yaml:"url" json:"url"`
	Query string `yaml:"query" json:"query"`
}

// Math computes Expression (expr-lang syntax: + - * / ^ % , comparisons, abs(), max(),
// min(), ceil(), floor()…) over Metrics, a map from variable name to series selector.
type Math struct {
	Expression string            `yaml:"expression" json:"expression"`
	Metrics    map[string]string `yaml:"metrics" json:"metrics"`
}

// Band is an anomaly band: breaching outside mean ± Deviations × stddev of the
// datapoints of the Training window (at least MinSamples of them).
type Band struct {
	Deviations float64       `yaml:"deviations,omitempty" json:"deviations,omitempty"`   // default 2
	Training   time.Duration `yaml:"training,omitempty" json:"training,omitempty"`       // default 14 days
	MinSamples int           `yaml:"min_samples,omitempty" json:"min_samples,omitempty"` // default 10
}

// Comparison is a parsed threshold.
type Comparison struct {
	Op    string // ">", ">=", "<", "<="
	Value float64
}

// ParseThreshold parses "> 300", ">=5", "< 1.5", "<= 0".
func ParseThreshold(s string) (Comparison, error) {
	t := strings.TrimSpace(s)
	var c Comparison
	for _, op := range []string{">=", "<=", ">", "<"} {
		if strings.HasPrefix(t, op) {
			c.Op = op
			t = strings.TrimSpace(t[len(op):])
			break
		}
	}
	if c.Op == "" {
		return c, fmt.Errorf("%q does not start with >, >=, < or <= (e.g. \"> 300\")", s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" {
		return c, fmt.Errorf("%q: %q is not a number", s, t)
	}
	c.Value = v
	return c, nil
}

// Breaches reports whether v crosses the threshold.
func (c Comparison) Breaches(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "<":
		return v < c.Value
	}
	return v <= c.Value
}

// words is how a reason names the comparison, as CloudWatch does.
func (c Comparison) words() string {
	switch c.Op {
	case ">":
		return "greater than"
	case ">=":
		return "greater than or equal to"
	case "<":
		return "less than"
	}
	return "less than or equal to"
}

func (s Spec) sources() []string {
	var k []string
	if s.Monitor != "" {
		k = append(k, "monitor")
	}
	if s.Metric != "" {
		k = append(k, "metric")
	}
	if s.Prometheus != nil {
		k = append(k, "prometheus")
	}
	if s.Expression != nil {
		k = append(k, "math")
	}
	if s.Composite != "" {
		k = append(k, "composite")
	}
	return k
}

// withDefaults fills zero fields with their defaults.
func (s Spec) withDefaults() Spec {
	if s.Composite != "" {
		return s
	}
	if s.Statistic == "" {
		s.Statistic = Average
	}
	if s.Period == 0 {
		s.Period = DefaultPeriod
	}
	if s.EvaluationPeriods == 0 {
		s.EvaluationPeriods = 1
	}
	if s.DatapointsToAlarm == 0 {
		s.DatapointsToAlarm = s.EvaluationPeriods
	}
	if s.MissingData == "" {
		s.MissingData = MissingMissing
	}
	if s.Monitor != "" && s.Threshold == "" {
		s.Threshold = "> 0"
	}
	if b := s.AnomalyBand; b != nil {
		c := *b
		if c.Deviations == 0 {
			c.Deviations = DefaultDeviations
		}
		if c.Training == 0 {
			c.Training = DefaultTraining
		}
		if c.MinSamples == 0 {
			c.MinSamples = DefaultMinSamples
		}
		s.AnomalyBand = &c
	}
	return s
}

// Validate reports every problem of s in one errs.Invalid error, or nil. It checks s on
// its own; references to other alarms and monitors are checked by NewEvaluator.
func (s Spec) Validate() error {
	var p problems
	switch k := s.sources(); len(k) {
	case 0:
		p.add("no source: set exactly one of monitor, metric, prometheus, math, composite")
	case 1:
	default:
		p.add("%d sources (%s): set exactly one", len(k), strings.Join(k, ", "))
	}
	if s.Composite != "" {
		if _, err := ParseRule(s.Composite); err != nil {
			p.add("composite: %v", err)
		}
		for _, f := range []struct {
			set  bool
			name string
		}{
			{s.Threshold != "", "threshold"}, {s.Statistic != "", "statistic"}, {s.Period != 0, "period"},
			{s.EvaluationPeriods != 0, "evaluation_periods"}, {s.DatapointsToAlarm != 0, "datapoints_to_alarm"},
			{s.MissingData != "", "missing_data"}, {s.AnomalyBand != nil, "anomaly_band"},
		} {
			if f.set {
				p.add("%s: a composite alarm has no %s (it follows its rule)", f.name, f.name)
			}
		}
		return p.err("alarm.Validate")
	}
	if s.Metric != "" {
		if _, err := ParseSelector(s.Metric); err != nil {
			p.add("metric: %v", err)
		}
	}
	if q := s.Prometheus; q != nil {
		if err := checkHTTPURL(q.URL); err != nil {
			p.add("prometheus.url: %v", err)
		}
		if strings.TrimSpace(q.Query) == "" {
			p.add("prometheus.query: missing")
		}
	}
	if m := s.Expression; m != nil {
		if len(m.Metrics) == 0 {
			p.add("math.metrics: missing (a map from variable name to series selector)")
		}
		for name, sel := range m.Metrics {
			if _, err := ParseSelector(sel); err != nil {
				p.add("math.metrics.%s: %v", name, err)
			}
		}
		if strings.TrimSpace(m.Expression) == "" {
			p.add("math.expression: missing")
		} else if _, err := expr.Compile(m.Expression, expr.Env(mathEnv(m)), expr.AsFloat64()); err != nil {
			p.add("math.expression: %v", err)
		}
	}
	switch {
	case s.AnomalyBand != nil && s.Threshold != "":
		p.add("threshold: an alarm with anomaly_band has no threshold (the band is the threshold)")
	case s.AnomalyBand != nil && s.Monitor != "":
		p.add("anomaly_band: a monitor alarm's datapoints are 0 or 1; use a threshold")
	case s.AnomalyBand == nil && s.Threshold == "" && s.Monitor == "":
		p.add("threshold: missing (e.g. \"> 300\"), or set anomaly_band")
	case s.Threshold != "":
		if _, err := ParseThreshold(s.Threshold); err != nil {
			p.add("threshold: %v", err)
		}
	}
	if b := s.AnomalyBand; b != nil {
		if b.Deviations < 0 {
			p.add("anomaly_band.deviations: must be positive, got %v", b.Deviations)
		}
		if b.Training < 0 {
			p.add("anomaly_band.training: must be positive, got %v", b.Training)
		}
		if b.MinSamples < 0 {
			p.add("anomaly_band.min_samples: must be positive, got %d", b.MinSamples)
		}
	}
	switch s.Statistic {
	case "", Average, Minimum, Maximum, Sum, SampleCount:
	default:
		p.add("statistic: %q is not Average, Minimum, Maximum, Sum or SampleCount", s.Statistic)
	}
	if s.Period < 0 {
		p.add("period: must be positive, got %v", s.Period)
	}
	if s.EvaluationPeriods < 0 {
		p.add("evaluation_periods: must be positive, got %d", s.EvaluationPeriods)
	}
	if s.DatapointsToAlarm < 0 {
		p.add("datapoints_to_alarm: must be positive, got %d", s.DatapointsToAlarm)
	}
	d := s.withDefaults()
	if s.DatapointsToAlarm > 0 && s.EvaluationPeriods >= 0 && d.DatapointsToAlarm > d.EvaluationPeriods {
		p.add("datapoints_to_alarm: %d is more than evaluation_periods (%d); M must be at most N", d.DatapointsToAlarm, d.EvaluationPeriods)
	}
	switch s.MissingData {
	case "", MissingMissing, MissingNotBreaching, MissingBreaching, MissingIgnore:
	default:
		p.add("missing_data: %q is not missing, notBreaching, breaching or ignore", s.MissingData)
	}
	return p.err("alarm.Validate")
}

func mathEnv(m *Math) map[string]any {
	env := make(map[string]any, len(m.Metrics))
	for name := range m.Metrics {
		env[name] = 0.0
	}
	return env
}

// compileMath compiles m's expression with its variables as floats.
func compileMath(m *Math) (*mathProgram, error) {
	prog, err := expr.Compile(m.Expression, expr.Env(mathEnv(m)), expr.AsFloat64())
	if err != nil {
		return nil, err
	}
	mp := &mathProgram{prog: prog, metrics: m.Metrics, sels: map[string]Selector{}}
	for name, raw := range m.Metrics {
		sel, err := ParseSelector(raw)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %v", name, err)
		}
		mp.sels[name] = sel
	}
	return mp, nil
}

// problems collects validation failures.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err(op string) error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return errs.Errorf(op, errs.Invalid, "%s", p[0])
	}
	return errs.Errorf(op, errs.Invalid, "%d problems: %s", len(p), strings.Join(p, "; "))
}
