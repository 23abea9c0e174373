package alarm

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// State is an alarm's state.
type State string

// The three states, as in CloudWatch. Every alarm starts INSUFFICIENT_DATA.
const (
	StateOK           State = "OK"
	StateAlarm        State = "ALARM"
	StateInsufficient State = "INSUFFICIENT_DATA"
)

// point is one raw sample.
type point struct {
	t time.Time
	v float64
}

// series is a time-ordered list of raw samples.
type series struct {
	points []point
	detail string // the latest monitor sample's detail, for reasons
}

func (s *series) add(t time.Time, v float64) {
	i := sort.Search(len(s.points), func(i int) bool { return s.points[i].t.After(t) })
	s.points = append(s.points, point{})
	copy(s.points[i+1:], s.points[i:])
	s.points[i] = point{t, v}
}

// prune drops samples before cutoff.
func (s *series) prune(cutoff time.Time) {
	i := sort.Search(len(s.points), func(i int) bool { return !s.points[i].t.Before(cutoff) })
	if i > 0 {
		s.points = append(s.points[:0], s.points[i:]...)
	}
}

// datapoint is one period's aggregate.
type datapoint struct {
	Start time.Time
	Value float64
	Count int // samples; 0 means missing
}

// periodStart aligns t to the period, counting from the Unix epoch.
func periodStart(t time.Time, p time.Duration) time.Time {
	n := t.UnixNano()
	m := n % int64(p)
	if m < 0 {
		m += int64(p)
	}
	return time.Unix(0, n-m).UTC()
}

// aggregate applies the statistic to vs (not empty).
func aggregate(stat string, vs []float64) float64 {
	switch stat {
	case SampleCount:
		return float64(len(vs))
	case Minimum:
		m := vs[0]
		for _, v := range vs[1:] {
			m = math.Min(m, v)
		}
		return m
	case Maximum:
		m := vs[0]
		for _, v := range vs[1:] {
			m = math.Max(m, v)
		}
		return m
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	if stat == Sum {
		return sum
	}
	return sum / float64(len(vs))
}

// datapoints returns the aggregates of the periods [from, to) (to excluded), oldest
// first, one per period, missing ones with Count 0.
func (s *series) datapoints(from, to time.Time, p time.Duration, stat string) []datapoint {
	n := int(to.Sub(from) / p)
	if n <= 0 {
		return nil
	}
	buckets := make([][]float64, n)
	i := sort.Search(len(s.points), func(i int) bool { return !s.points[i].t.Before(from) })
	for ; i < len(s.points) && s.points[i].t.Before(to); i++ {
		k := int(s.points[i].t.Sub(from) / p)
		buckets[k] = append(buckets[k], s.points[i].v)
	}
	out := make([]datapoint, n)
	for k, b := range buckets {
		out[k] = datapoint{Start: from.Add(time.Duration(k) * p), Count: len(b)}
		if len(b) > 0 {
			out[k].Value = aggregate(stat, b)
		}
	}
	return out
}

// verdict is the outcome of one evaluation of a window.
type verdict struct {
	state     State
	keep      bool        // keep the current state
	used      []datapoint // the real datapoints that decided, newest first
	breaching int         // among used
	filled    int         // missing datapoints filled by the treatment
	premature bool        // ALARM by the premature-alarm rule
}

// decide applies CloudWatch's M-out-of-N evaluation with a missing-data treatment to
// window (the evaluation range, oldest first). See the package documentation.
func decide(window []datapoint, n, m int, treatment string, breach func(float64) bool) verdict {
	var real []datapoint
	for i := len(window) - 1; i >= 0; i-- {
		if window[i].Count > 0 {
			real = append(real, window[i])
		}
	}
	var v verdict
	if len(real) >= n {
		v.used = real[:n]
	} else {
		v.used = real
		v.filled = n - len(real)
	}
	for _, d := range v.used {
		if breach(d.Value) {
			v.breaching++
		}
	}
	b, k, fill := v.breaching, len(v.used), v.filled
	if fill == 0 {
		v.state = pick(b >= m)
		return v
	}
	switch treatment {
	case MissingBreaching:
		v.state = pick(b+fill >= m)
	case MissingNotBreaching:
		v.state = pick(b >= m)
	case MissingIgnore:
		switch {
		case k == 0:
			v.keep = true
		case b >= m:
			v.state = StateAlarm
		case b+fill < m:
			v.state = StateOK
		default:
			v.keep = true
		}
	default: // missing
		switch {
		case k == 0:
			v.state = StateInsufficient
		case b >= m:
			v.state = StateAlarm
		case prematureAlarm(window, m, breach):
			v.state, v.premature = StateAlarm, true
		case b+fill < m:
			v.state = StateOK
		default:
			v.keep = true
		}
	}
	return v
}

func pick(alarm bool) State {
	if alarm {
		return StateAlarm
	}
	return StateOK
}

// prematureAlarm is CloudWatch's rule for a breaching datapoint followed only by missing
// (or breaching) ones: ALARM when the oldest breaching datapoint of that newest run is at
// least m periods old.
func prematureAlarm(window []datapoint, m int, breach func(float64) bool) bool {
	oldest := -1
	for i := len(window) - 1; i >= 0; i-- {
		d := window[i]
		if d.Count == 0 {
			continue
		}
		if !breach(d.Value) {
			break
		}
		oldest = i
	}
	return oldest >= 0 && len(window)-oldest >= m
}

// formatValue prints a number as CloudWatch does in reasons: 1.0, 84.5.
func formatValue(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEIN") {
		s += ".0"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// datapointList is "[1.0 (10/05/26 12:00:30), 0.0 (…)]", newest first.
func datapointList(ds []datapoint) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s (%s)", formatValue(d.Value), d.Start.UTC().Format("02/01/06 15:04:05"))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// reasonData is the JSON companion of a reason, shaped like CloudWatch's.
type reasonData struct {
	Version             string           `json:"version"`
	QueryDate           time.Time        `json:"queryDate"`
	StartDate           time.Time        `json:"startDate,omitzero"`
	Statistic           string           `json:"statistic,omitempty"`
	Period              float64          `json:"period,omitempty"` // seconds
	RecentDatapoints    []float64        `json:"recentDatapoints"`
	Threshold           *float64         `json:"threshold,omitempty"`
	ComparisonOperator  string           `json:"comparisonOperator,omitempty"`
	Band                *bandData        `json:"band,omitempty"`
	EvaluatedDatapoints []evaluatedPoint `json:"evaluatedDatapoints"`
	MissingData         string           `json:"treatMissingData,omitempty"`
	FilledDatapoints    int              `json:"filledDatapoints,omitempty"`
	Error               string           `json:"error,omitempty"`
	Rule                string           `json:"alarmRule,omitempty"`
	Children            map[string]State `json:"triggeringAlarms,omitempty"`
}

type bandData struct {
	Lower      float64 `json:"lower"`
	Upper      float64 `json:"upper"`
	Mean       float64 `json:"mean"`
	StdDev     float64 `json:"stddev"`
	Deviations float64 `json:"deviations"`
	Samples    int     `json:"samples"`
}

type evaluatedPoint struct {
	Timestamp   time.Time `json:"timestamp"`
	SampleCount int       `json:"sampleCount"`
	Value       float64   `json:"value"`
}

func (r reasonData) marshal() json.RawMessage {
	if r.RecentDatapoints == nil {
		r.RecentDatapoints = []float64{}
	}
	if r.EvaluatedDatapoints == nil {
		r.EvaluatedDatapoints = []evaluatedPoint{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Only non-finite floats can fail, and datapoints are finite.
		return json.RawMessage(`{"version":"1.0"}`)
	}
	return b
}
