package alarm_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/errs"
)

func registry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	rpo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rewind_rpo_exposure_seconds"}, []string{"resource", "site"})
	rpo.WithLabelValues("orders-db", "a").Set(100)
	rpo.WithLabelValues("orders-db", "b").Set(250)
	rpo.WithLabelValues("shop-files", "a").Set(7)
	jobs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rewind_jobs_total"}, []string{"status"})
	jobs.WithLabelValues("ok").Add(40)
	jobs.WithLabelValues("failed").Add(2)
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_backup_seconds", Buckets: []float64{1, 10}})
	dur.Observe(3)
	dur.Observe(5)
	reg.MustRegister(rpo, jobs, dur)
	return reg
}

func TestSelector(t *testing.T) {
	fams, err := registry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel   string
		sum   float64
		n     int
		canon string
	}{
		{`rewind_rpo_exposure_seconds{resource="orders-db"}`, 350, 2, `rewind_rpo_exposure_seconds{resource="orders-db"}`},
		{`rewind_rpo_exposure_seconds{resource="orders-db", site = 'b'}`, 250, 1, `rewind_rpo_exposure_seconds{resource="orders-db",site="b"}`},
		{`rewind_rpo_exposure_seconds`, 357, 3, `rewind_rpo_exposure_seconds`},
		{`rewind_rpo_exposure_seconds{}`, 357, 3, `rewind_rpo_exposure_seconds`},
		{`rewind_rpo_exposure_seconds{resource!="orders-db"}`, 7, 1, ""},
		{`rewind_rpo_exposure_seconds{resource=~"orders.*"}`, 350, 2, ""},
		{`rewind_rpo_exposure_seconds{resource=~"orders"}`, 0, 0, ""}, // anchored
		{`rewind_rpo_exposure_seconds{resource!~"orders.*",}`, 7, 1, ""},
		{`rewind_rpo_exposure_seconds{missing=""}`, 357, 3, ""},
		{`{__name__="rewind_jobs_total", status="failed"}`, 2, 1, `rewind_jobs_total{status="failed"}`},
		{`rewind_backup_seconds_count`, 2, 1, ""},
		{`rewind_backup_seconds_sum`, 8, 1, ""},
		{`rewind_nothing`, 0, 0, ""},
		{`m{l="a\"b\\c"}`, 0, 0, `m{l="a\"b\\c"}`},
	}
	for _, tt := range tests {
		s, err := alarm.ParseSelector(tt.sel)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.sel, err)
			continue
		}
		if sum, n := s.Eval(fams); sum != tt.sum || n != tt.n {
			t.Errorf("%s: sum %v over %d series, want %v over %d", tt.sel, sum, n, tt.sum, tt.n)
		}
		if tt.canon != "" && s.String() != tt.canon {
			t.Errorf("%s: String() = %s, want %s", tt.sel, s.String(), tt.canon)
		}
	}
}

func TestSelectorErrors(t *testing.T) {
	tests := []struct{ sel, want string }{
		{"", "column 1: empty selector"},
		{"m{", "column 3: missing '}'"},
		{`m{a="b"`, "column 8: missing '}'"},
		{`m{a="b" c="d"}`, `column 9: unexpected 'c': expected ',' or '}'`},
		{`m{a}`, "column 4: expected =, !=, =~ or !~ after label a"},
		{`m{a=b}`, "column 5: expected a quoted value"},
		{`m{a="b}`, "column 5: unterminated quoted value"},
		{`m{a=~"("}`, `label a: bad regular expression "("`},
		{`m x`, "column 3: unexpected 'x'"},
		{`m{a="b"} x`, "column 10: unexpected 'x' after '}'"},
		{`{a="b"}`, "no metric name"},
		{`m{9="x"}`, "column 3: expected a label name, found '9'"},
		{`m{a="\q"}`, `unknown escape \q`},
		{`9m`, "column 1: unexpected '9'"},
	}
	for _, tt := range tests {
		_, err := alarm.ParseSelector(tt.sel)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errs.Is(err, errs.Invalid) {
			t.Errorf("ParseSelector(%q) = %v, want an invalid error containing %q", tt.sel, err, tt.want)
		}
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{`a{b="c"}`, `a{b=~"c.*",d!="e"}`, `{__name__="x"}`, `x_y:z{a='b\'c'}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := alarm.ParseSelector(s)
		if err != nil {
			return
		}
		// The canonical form parses to the same canonical form.
		again, err := alarm.ParseSelector(sel.String())
		if err != nil || again.String() != sel.String() {
			t.Fatalf("%q -> %q -> %v %q", s, sel.String(), err, again.String())
		}
	})
}
