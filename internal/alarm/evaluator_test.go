package alarm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/errs"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec alarm.Spec
		want []string
	}{
		{"monitor", alarm.Spec{Monitor: "shop-http", DatapointsToAlarm: 3, EvaluationPeriods: 5, MissingData: "breaching"}, nil},
		{"metric", alarm.Spec{Metric: `rewind_rpo_exposure_seconds{resource="orders-db"}`, Threshold: "> 300", EvaluationPeriods: 2}, nil},
		{"prometheus", alarm.Spec{Prometheus: &alarm.PromQuery{URL: "http://127.0.0.1:9090", Query: "sum(x)"}, Threshold: "> 5"}, nil},
		{"composite", alarm.Spec{Composite: "ALARM(a) AND NOT ALARM(b)"}, nil},
		{"band", alarm.Spec{Metric: "m", AnomalyBand: &alarm.Band{Deviations: 2}}, nil},
		{"math", alarm.Spec{Expression: &alarm.Math{Expression: "a / b * 100", Metrics: map[string]string{"a": "x", "b": "y"}}, Threshold: "> 1"}, nil},
		{"no source", alarm.Spec{Threshold: "> 1"}, []string{"no source"}},
		{"two sources", alarm.Spec{Monitor: "a", Metric: "b"}, []string{"2 sources (monitor, metric)"}},
		{"no threshold", alarm.Spec{Metric: "m"}, []string{"threshold: missing"}},
		{"bad threshold", alarm.Spec{Metric: "m", Threshold: "= 3"}, []string{`threshold: "= 3" does not start with >`}},
		{"bad number", alarm.Spec{Metric: "m", Threshold: "> lots"}, []string{`"lots" is not a number`}},
		{"band and threshold", alarm.Spec{Metric: "m", Threshold: "> 1", AnomalyBand: &alarm.Band{}}, []string{"anomaly_band has no threshold"}},
		{"band on monitor", alarm.Spec{Monitor: "m", AnomalyBand: &alarm.Band{}}, []string{"anomaly_band: a monitor alarm"}},
		{"M > N", alarm.Spec{Monitor: "m", DatapointsToAlarm: 4, EvaluationPeriods: 3}, []string{"datapoints_to_alarm: 4 is more than evaluation_periods (3)"}},
		{"M > default N", alarm.Spec{Monitor: "m", DatapointsToAlarm: 2}, []string{"more than evaluation_periods (1)"}},
		{"composite with threshold", alarm.Spec{Composite: "TRUE", Threshold: "> 1", Period: time.Minute}, []string{"threshold: a composite alarm has no threshold", "period: a composite"}},
		{"bad composite", alarm.Spec{Composite: "ALARM(a"}, []string{"composite:", "column 8"}},
		{"bad fields", alarm.Spec{Metric: "m{", Threshold: "> 1", Statistic: "p99", MissingData: "skip", Period: -1, EvaluationPeriods: -2}, []string{
			"5 problems", "metric:", `statistic: "p99"`, `missing_data: "skip"`, "period: must be positive", "evaluation_periods: must be positive"}},
		{"prometheus bad", alarm.Spec{Prometheus: &alarm.PromQuery{URL: "localhost:9090"}, Threshold: "> 1"}, []string{"prometheus.url", "prometheus.query: missing"}},
		{"math bad", alarm.Spec{Expression: &alarm.Math{Expression: "a +", Metrics: map[string]string{"a": "x{"}}, Threshold: "> 1"}, []string{"math.metrics.a", "math.expression"}},
		{"math unknown var", alarm.Spec{Expression: &alarm.Math{Expression: "a + c", Metrics: map[string]string{"a": "x"}}, Threshold: "> 1"}, []string{"math.expression", "unknown name c"}},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: Validate() = %v", tt.name, err)
			}
			continue
		}
		if err == nil || !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: Validate() = %v, want an invalid error", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not contain %q", tt.name, err, w)
			}
		}
	}
}

func TestNewEvaluatorRefuses(t *testing.T) {
	tests := []struct {
		name  string
		specs map[string]alarm.Spec
		opts  []alarm.Option
		want  string
	}{
		{"cycle", map[string]alarm.Spec{
			"a": {Composite: "ALARM(b)"}, "b": {Composite: "OK(c) OR ALARM(m)"}, "c": {Composite: "ALARM(a)"}, "m": {Monitor: "x"},
		}, nil, "composite alarms form a cycle: a -> b -> c -> a"},
		{"self", map[string]alarm.Spec{"a": {Composite: "ALARM(a)"}}, nil, "cycle: a -> a"},
		{"unknown child", map[string]alarm.Spec{"a": {Composite: "ALARM(ghost)"}}, nil, `its rule names alarm "ghost", which does not exist`},
		{"unknown monitor", map[string]alarm.Spec{"a": {Monitor: "ghost"}}, []alarm.Option{alarm.WithMonitors(map[string]time.Duration{"shop": time.Second})}, `monitor "ghost" does not exist`},
		{"bad spec", map[string]alarm.Spec{"a": {Metric: "m"}}, nil, "alarm a: threshold: missing"},
	}
	for _, tt := range tests {
		_, err := alarm.NewEvaluator(tt.specs, nil, tt.opts...)
		if err == nil || !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewEvaluator = %v, want an invalid error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestObserveMetricErrors(t *testing.T) {
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{"m": {Monitor: "x"}, "c": {Metric: "y", Threshold: "> 1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ObserveMetric("ghost", t0, 1); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown alarm: %v", err)
	}
	if err := e.ObserveMetric("m", t0, 1); !errs.Is(err, errs.Invalid) {
		t.Errorf("monitor alarm: %v", err)
	}
	if err := e.ObserveMetric("c", t0, 1/zero()); !errs.Is(err, errs.Invalid) {
		t.Errorf("infinite value: %v", err)
	}
}

func zero() float64 { return 0 }

// TestMetricFromRegistry reads a selector from a registry at every pass.
func TestMetricFromRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_rpo_exposure_seconds"}, []string{"resource"})
	reg.MustRegister(g)
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{
		"rpo-breach": {Metric: `rewind_rpo_exposure_seconds{resource="orders-db"}`, Threshold: "> 300", EvaluationPeriods: 2},
	}, nil, alarm.WithGatherer(reg))
	if err != nil {
		t.Fatal(err)
	}
	// No series yet: no datapoint, and the status says why.
	if ch := e.Evaluate(ctx, t0.Add(time.Second)); len(ch) != 0 {
		t.Fatalf("changes without data: %+v", ch)
	}
	if st := e.States()[0]; !strings.Contains(st.LastError, "no series matches") {
		t.Errorf("LastError = %q", st.LastError)
	}
	g.WithLabelValues("orders-db").Set(400)
	var got []alarm.State
	for i := 1; i <= 4; i++ {
		if i == 3 {
			g.WithLabelValues("orders-db").Set(10)
		}
		for _, c := range e.Evaluate(ctx, t0.Add(time.Duration(i)*time.Minute+time.Second)) {
			got = append(got, c.Current)
		}
	}
	if fmt.Sprint(got) != "[ALARM OK]" {
		t.Errorf("transitions %v, want [ALARM OK]", got)
	}
}

func TestMath(t *testing.T) {
	reg := prometheus.NewRegistry()
	jobs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobs"}, []string{"status"})
	reg.MustRegister(jobs)
	jobs.WithLabelValues("failed").Set(3)
	jobs.WithLabelValues("ok").Set(0)
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{
		"failure-rate": {Expression: &alarm.Math{
			Expression: "failed / (failed + ok) * 100",
			Metrics:    map[string]string{"failed": `jobs{status="failed"}`, "ok": `jobs{status="ok"}`},
		}, Threshold: "> 50"},
	}, nil, alarm.WithGatherer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ch := e.Evaluate(ctx, t0.Add(time.Second))
	if len(ch) != 1 || ch[0].Current != alarm.StateAlarm || !strings.Contains(ch[0].Reason, "[100.0 (") {
		t.Fatalf("3 of 3 failed: %+v, want ALARM at 100", ch)
	}
	jobs.WithLabelValues("failed").Set(1)
	jobs.WithLabelValues("ok").Set(9)
	ch = e.Evaluate(ctx, t0.Add(time.Minute+time.Second))
	if len(ch) != 1 || ch[0].Current != alarm.StateOK || !strings.Contains(ch[0].Reason, "[10.0 (") {
		t.Fatalf("1 of 10 failed: %+v, want OK at 10", ch)
	}
	// Division by zero is a missing datapoint.
	jobs.WithLabelValues("failed").Set(0)
	jobs.WithLabelValues("ok").Set(0)
	ch = e.Evaluate(ctx, t0.Add(5*time.Minute+time.Second))
	if len(ch) != 1 || ch[0].Current != alarm.StateInsufficient {
		t.Fatalf("0/0: %+v, want INSUFFICIENT_DATA", ch)
	}
	if st := e.States()[0]; !strings.Contains(st.LastError, "division by zero") {
		t.Errorf("LastError = %q", st.LastError)
	}
}

// promServer answers /api/v1/query with the body for the query.
func promServer(t *testing.T, bodies map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		body, ok := bodies[r.FormValue("query")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestQueryPrometheus(t *testing.T) {
	srv := promServer(t, map[string]string{
		"scalar": `{"status":"success","data":{"resultType":"scalar","result":[1715342400.5,"7.5"]}}`,
		"one":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"shop"},"value":[1715342400,"12"]}]}}`,
		"none":   `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"two":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1,"1"]},{"metric":{"job":"b"},"value":[1,"0"]}]}}`,
		"matrix": `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		"nan":    `{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}`,
		"html":   `<html>proxy error</html>`,
	})
	tests := []struct {
		query string
		v     float64
		ok    bool
		err   string
	}{
		{"scalar", 7.5, true, ""},
		{"one", 12, true, ""},
		{"none", 0, false, ""},
		{"nan", 0, false, ""},
		{"two", 0, false, `returned 2 series (up{job="a"}…); an alarm needs one: aggregate it`},
		{"matrix", 0, false, "returned a matrix; an alarm needs a scalar or a single-series vector"},
		{"html", 0, false, "not the query API's JSON"},
		{"sum(", 0, false, "failed (bad_data): parse error"},
	}
	for _, tt := range tests {
		v, ok, err := alarm.QueryPrometheus(ctx, srv.Client(), srv.URL, tt.query)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.query, err, tt.err)
			}
			continue
		}
		if err != nil || v != tt.v || ok != tt.ok {
			t.Errorf("%s: %v %v %v, want %v %v", tt.query, v, ok, err, tt.v, tt.ok)
		}
	}
	// Through an alarm.
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{
		"error-rate": {Prometheus: &alarm.PromQuery{URL: srv.URL, Query: "one"}, Threshold: "> 5"},
		"broken":     {Prometheus: &alarm.PromQuery{URL: srv.URL, Query: "two"}, Threshold: "> 5"},
	}, nil, alarm.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ch := e.Evaluate(ctx, t0)
	if len(ch) != 1 || ch[0].Alarm != "error-rate" || ch[0].Current != alarm.StateAlarm {
		t.Errorf("changes %+v, want error-rate ALARM", ch)
	}
	for _, st := range e.States() {
		if st.Name == "broken" && !strings.Contains(st.LastError, "2 series") {
			t.Errorf("broken LastError = %q", st.LastError)
		}
	}
}

func TestAnomalyBand(t *testing.T) {
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{
		"orders-drop": {Metric: "orders", AnomalyBand: &alarm.Band{Deviations: 2, Training: time.Hour, MinSamples: 10}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i)*time.Minute + 10*time.Second) }
	// 5 minutes of history is too little.
	for i := range 5 {
		_ = e.ObserveMetric("orders-drop", at(i), 100)
	}
	ch := e.Evaluate(ctx, at(5))
	if len(ch) != 0 {
		t.Fatalf("changes %+v with too little history", ch)
	}
	_ = e.ObserveMetric("orders-drop", at(5), 100)
	// 30 minutes alternating 90 and 110: mean 100, stddev 10, band 80..120.
	for i := 6; i < 36; i++ {
		_ = e.ObserveMetric("orders-drop", at(i), float64(90+20*(i%2)))
	}
	_ = e.ObserveMetric("orders-drop", at(36), 115)
	ch = e.Evaluate(ctx, at(36))
	if len(ch) != 1 || ch[0].Current != alarm.StateOK {
		t.Fatalf("115 inside the band: %+v", ch)
	}
	_ = e.ObserveMetric("orders-drop", at(37), 40)
	ch = e.Evaluate(ctx, at(37))
	if len(ch) != 1 || ch[0].Current != alarm.StateAlarm {
		t.Fatalf("40 outside the band: %+v", ch)
	}
	if !strings.Contains(ch[0].Reason, "were outside the band (") && !strings.Contains(ch[0].Reason, "was outside the band (") {
		t.Errorf("reason %q does not report the band", ch[0].Reason)
	}
	var rd struct {
		Band struct{ Lower, Upper, Mean float64 } `json:"band"`
	}
	if err := json.Unmarshal(ch[0].ReasonData, &rd); err != nil || rd.Band.Upper <= rd.Band.Lower || rd.Band.Lower > 100 || rd.Band.Upper < 100 {
		t.Errorf("reason data %s: band %+v (%v)", ch[0].ReasonData, rd.Band, err)
	}

	// An evaluator with too little history says so.
	e2, _ := alarm.NewEvaluator(map[string]alarm.Spec{"b": {Metric: "m", AnomalyBand: &alarm.Band{}}}, nil)
	_ = e2.ObserveMetric("b", at(0), 1)
	_ = e2.ObserveMetric("b", at(5), 1)
	ch = e2.Evaluate(ctx, at(5))
	if len(ch) != 0 || !strings.Contains(e2.States()[0].Reason, "Unchecked") {
		t.Fatalf("changes %+v", ch)
	}
	_ = e2.ObserveMetric("b", at(3), 1)
	for i := 0; i < 20; i++ {
		_ = e2.ObserveMetric("b", at(6+i), 1)
	}
	ch = e2.Evaluate(ctx, at(25))
	if len(ch) != 1 || ch[0].Current != alarm.StateOK {
		t.Fatalf("a flat history: %+v, want OK (a constant inside a zero-width band)", ch)
	}
}

func TestChangeDetail(t *testing.T) {
	c := alarm.Change{Alarm: "shop-down", Previous: alarm.StateOK, Current: alarm.StateAlarm, Reason: "r",
		ReasonData: json.RawMessage(`{"version":"1.0"}`), PreviousReason: "p", PreviousSince: t0, Time: t0.Add(time.Minute)}
	var d struct {
		AlarmName string `json:"alarmName"`
		State     struct {
			Value      string
			Reason     string
			ReasonData map[string]any
		} `json:"state"`
		PreviousState struct{ Value, Reason, Timestamp string } `json:"previousState"`
	}
	if err := json.Unmarshal(c.Detail(), &d); err != nil {
		t.Fatal(err)
	}
	if d.AlarmName != "shop-down" || d.State.Value != "ALARM" || d.State.Reason != "r" || d.State.ReasonData["version"] != "1.0" ||
		d.PreviousState.Value != "OK" || d.PreviousState.Reason != "p" || d.PreviousState.Timestamp != "2026-05-10T12:00:00Z" {
		t.Errorf("detail %s", c.Detail())
	}
	if alarm.EventSource != "rewind.monitor" || alarm.EventDetailType != "Alarm State Change" {
		t.Error("event source and detail-type changed")
	}
}

func TestConcurrentUse(t *testing.T) {
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{"a": {Metric: "m", Threshold: "> 1"}, "c": {Composite: "ALARM(a)"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				at := t0.Add(time.Duration(i) * time.Second)
				_ = e.ObserveMetric("a", at, float64(g+i%3))
				e.Evaluate(ctx, at)
				e.States()
			}
		}()
	}
	wg.Wait()
}
