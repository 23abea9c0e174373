package alarm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/alarm"
)

var ctx = context.Background()

// t0 is a period boundary for every period used in the tests.
var t0 = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

// run feeds pattern to a metric alarm, one character per minute period ('0' a value of
// 0, 'X' a value of 1 (breaching "> 0"), '-' nothing), evaluating after each period as
// a running server does. It checks that the changes chain (each Previous is the state
// before) and returns the final state, its reason and the number of changes.
func run(t *testing.T, s alarm.Spec, pattern string) (alarm.State, string, int) {
	t.Helper()
	if s.Threshold == "" && s.AnomalyBand == nil {
		s.Threshold = "> 0"
	}
	s.Metric = "rewind_test_value"
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{"a": s}, func() time.Time { return t0 })
	if err != nil {
		t.Fatalf("NewEvaluator: %v", err)
	}
	state, changes := alarm.StateInsufficient, 0
	for i, c := range pattern {
		at := t0.Add(time.Duration(i) * time.Minute).Add(10 * time.Second)
		switch c {
		case '0', 'X':
			v := 0.0
			if c == 'X' {
				v = 1
			}
			if err := e.ObserveMetric("a", at, v); err != nil {
				t.Fatal(err)
			}
		case '-':
		default:
			t.Fatalf("bad pattern %q", pattern)
		}
		// Evaluate when the period has ended, as the next one begins.
		for _, ch := range e.Evaluate(ctx, t0.Add(time.Duration(i+1)*time.Minute).Add(time.Second)) {
			if ch.Previous != state || ch.Current == state || ch.Alarm != "a" {
				t.Fatalf("%s after %q: change %+v does not follow state %s", s.MissingData, pattern[:i+1], ch, state)
			}
			state = ch.Current
			changes++
		}
	}
	st := e.States()[0]
	if st.State != state {
		t.Fatalf("States() = %s, changes say %s", st.State, state)
	}
	return state, st.Reason, changes
}

const (
	ok    = alarm.StateOK
	alrm  = alarm.StateAlarm
	insuf = alarm.StateInsufficient
)

// TestMissingData checks the table of CloudWatch's documentation (3 out of 3, an
// evaluation range of 5) for the four treatments.
func TestMissingData(t *testing.T) {
	tests := []struct {
		pattern                                  string
		missing, ignore, breaching, notBreaching alarm.State
	}{
		{"0-X-X", ok, ok, ok, ok},
		{"----0", ok, ok, ok, ok},
		{"-----", insuf, insuf, alrm, ok},
		{"0XX-X", alrm, alrm, alrm, alrm},
		{"--X--", alrm, insuf, alrm, ok},  // the premature-alarm rule alarms
		{"----X", insuf, insuf, alrm, ok}, // …but not on a fresh breaching point
		{"XXX-----", insuf, alrm, alrm, ok},
		{"000-----", insuf, ok, alrm, ok},
		{"XXX0", ok, ok, ok, ok},
	}
	for _, tt := range tests {
		for treatment, want := range map[string]alarm.State{
			alarm.MissingMissing: tt.missing, alarm.MissingIgnore: tt.ignore,
			alarm.MissingBreaching: tt.breaching, alarm.MissingNotBreaching: tt.notBreaching,
		} {
			t.Run(tt.pattern+"/"+treatment, func(t *testing.T) {
				got, reason, _ := run(t, alarm.Spec{EvaluationPeriods: 3, DatapointsToAlarm: 3, MissingData: treatment}, tt.pattern)
				if got != want {
					t.Errorf("%s with %s: state %s, want %s (reason %q)", tt.pattern, treatment, got, want, reason)
				}
			})
		}
	}
}

func TestMOutOfN(t *testing.T) {
	tests := []struct {
		pattern string
		n, m    int
		want    alarm.State
		changes int
	}{
		{"X0X0X", 5, 3, alrm, 1},
		{"X00X0", 5, 3, ok, 1},
		{"XX", 1, 1, alrm, 1},
		{"X0", 1, 1, ok, 2},
		{"0X0X0X", 2, 1, alrm, 1},
		{"0X00X", 2, 1, alrm, 3},
		{"XXXXX00", 5, 3, alrm, 1},
		{"XXXXX0000", 5, 3, ok, 2},
		{"00000X0X0X0X", 5, 2, alrm, 2},
	}
	for _, tt := range tests {
		got, reason, changes := run(t, alarm.Spec{EvaluationPeriods: tt.n, DatapointsToAlarm: tt.m}, tt.pattern)
		if got != tt.want || changes != tt.changes {
			t.Errorf("%s %d of %d: state %s after %d changes, want %s after %d (reason %q)", tt.pattern, tt.m, tt.n, got, changes, tt.want, tt.changes, reason)
		}
	}
}

func TestReason(t *testing.T) {
	_, reason, _ := run(t, alarm.Spec{EvaluationPeriods: 5, DatapointsToAlarm: 3}, "0XX0X")
	want := "Threshold Crossed: 3 out of the last 5 datapoints [1.0 (10/05/26 12:04:00), 0.0 (10/05/26 12:03:00), 1.0 (10/05/26 12:02:00), 1.0 (10/05/26 12:01:00), 0.0 (10/05/26 12:00:00)] were greater than the threshold (0.0) (minimum 3 datapoints for INSUFFICIENT_DATA -> ALARM transition)."
	if reason != want {
		t.Errorf("reason\n got %q\nwant %q", reason, want)
	}
	_, reason, _ = run(t, alarm.Spec{EvaluationPeriods: 3, MissingData: alarm.MissingBreaching}, "X")
	if !strings.Contains(reason, "2 missing datapoints were treated as [Breaching]") {
		t.Errorf("reason %q does not say how missing datapoints were treated", reason)
	}
	_, reason, _ = run(t, alarm.Spec{EvaluationPeriods: 2}, "X0")
	if !strings.Contains(reason, "1 out of the last 2 datapoints [0.0 (10/05/26 12:01:00), 1.0") || !strings.Contains(reason, "was not greater than the threshold (0.0)") {
		t.Errorf("OK reason %q", reason)
	}
}

// TestStatistics aggregates three samples (1, 5, 9) in one period.
func TestStatistics(t *testing.T) {
	tests := []struct {
		stat, threshold string
		want            alarm.State
	}{
		{"", "> 4.9", alrm}, {"", "> 5", ok}, // Average 5
		{alarm.Average, ">= 5", alrm},
		{alarm.Minimum, "<= 1", alrm}, {alarm.Minimum, "< 1", ok},
		{alarm.Maximum, ">= 9", alrm}, {alarm.Maximum, "> 9", ok},
		{alarm.Sum, "> 14.5", alrm}, {alarm.Sum, "> 15", ok},
		{alarm.SampleCount, ">= 3", alrm}, {alarm.SampleCount, "> 3", ok},
	}
	for _, tt := range tests {
		e, err := alarm.NewEvaluator(map[string]alarm.Spec{"a": {Metric: "m", Statistic: tt.stat, Threshold: tt.threshold}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range []float64{1, 5, 9} {
			if err := e.ObserveMetric("a", t0.Add(time.Duration(i+1)*time.Second), v); err != nil {
				t.Fatal(err)
			}
		}
		ch := e.Evaluate(ctx, t0.Add(30*time.Second))
		if len(ch) != 1 || ch[0].Current != tt.want {
			t.Errorf("%s %s: changes %+v, want one to %s", tt.stat, tt.threshold, ch, tt.want)
		}
	}
}

func TestNoChangeWithoutTransition(t *testing.T) {
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{"a": {Metric: "m", Threshold: "> 1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := e.ObserveMetric("a", at, 5); err != nil {
			t.Fatal(err)
		}
		ch := e.Evaluate(ctx, at.Add(time.Second))
		if want := map[bool]int{true: 1, false: 0}[i == 0]; len(ch) != want {
			t.Fatalf("pass %d: %d changes, want %d", i, len(ch), want)
		}
	}
	st := e.States()[0]
	if st.State != alrm || !st.Since.Equal(t0.Add(time.Second)) {
		t.Errorf("status %+v: want ALARM since the first pass", st)
	}
}

// TestFutureSamples: a sample stamped after now is not part of the evaluation.
func TestFutureSamples(t *testing.T) {
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{"a": {Metric: "m", Threshold: "> 1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = e.ObserveMetric("a", t0.Add(10*time.Second), 0)
	_ = e.ObserveMetric("a", t0.Add(40*time.Second), 100)
	ch := e.Evaluate(ctx, t0.Add(20*time.Second))
	if len(ch) != 1 || ch[0].Current != ok {
		t.Errorf("changes %+v, want OK from the sample before now only", ch)
	}
}
