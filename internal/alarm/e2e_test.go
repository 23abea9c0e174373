package alarm_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/monitor"
)

// TestMonitorAlarm: a real HTTP service goes down and comes back; a 3-out-of-5 monitor
// alarm and a composite over it follow.
func TestMonitorAlarm(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: handler}}
	srv.Start()
	defer func() { srv.Close() }()

	const every = 10 * time.Second
	mon, err := monitor.New("shop-http", monitor.Spec{HTTP: &monitor.HTTP{URL: "http://" + addr + "/health", ExpectStatus: 200}, Every: every, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e, err := alarm.NewEvaluator(map[string]alarm.Spec{
		"shop-down":   {Monitor: "shop-http", DatapointsToAlarm: 3, EvaluationPeriods: 5},
		"maintenance": {Metric: "rewind_maintenance", Threshold: "> 0"},
		"shop-lost":   {Composite: "ALARM(shop-down) AND NOT ALARM(maintenance)"},
	}, nil, alarm.WithMonitors(map[string]time.Duration{"shop-http": every}))
	if err != nil {
		t.Fatal(err)
	}
	step := 0
	// probe probes the service, stamps the sample with the test's clock and evaluates.
	probe := func(wantHealthy bool) []alarm.Change {
		t.Helper()
		at := t0.Add(time.Duration(step) * every)
		step++
		s := mon.Probe(ctx)
		if s.Healthy != wantHealthy {
			t.Fatalf("step %d: sample %+v, want healthy %v", step, s, wantHealthy)
		}
		s.Time = at.Add(time.Millisecond)
		e.Observe(s)
		if err := e.ObserveMetric("maintenance", at.Add(time.Millisecond), 0); err != nil {
			t.Fatal(err)
		}
		return e.Evaluate(ctx, at.Add(2*time.Millisecond))
	}
	summary := func(cs []alarm.Change) string {
		var parts []string
		for _, c := range cs {
			parts = append(parts, c.Alarm+":"+string(c.Previous)+">"+string(c.Current))
		}
		return strings.Join(parts, " ")
	}
	expectChanges := func(cs []alarm.Change, want string) {
		t.Helper()
		if got := summary(cs); got != want {
			t.Fatalf("step %d: changes %q, want %q", step, got, want)
		}
	}

	expectChanges(probe(true), "maintenance:INSUFFICIENT_DATA>OK shop-lost:INSUFFICIENT_DATA>OK")
	expectChanges(probe(true), "")
	expectChanges(probe(true), "shop-down:INSUFFICIENT_DATA>OK")

	srv.Close()
	expectChanges(probe(false), "")
	expectChanges(probe(false), "")
	cs := probe(false)
	expectChanges(cs, "shop-down:OK>ALARM shop-lost:OK>ALARM")
	if r := cs[0].Reason; !strings.HasPrefix(r, "Threshold Crossed: 3 out of the last 5 datapoints [1.0 (") ||
		!strings.Contains(r, "were greater than the threshold (0.0) (minimum 3 datapoints for OK -> ALARM transition).") ||
		!strings.Contains(r, "Latest sample:") || !strings.Contains(r, "refused") {
		t.Errorf("reason %q", r)
	}
	if r := cs[1].Reason; !strings.Contains(r, "is true: maintenance is OK, shop-down is ALARM") {
		t.Errorf("composite reason %q", r)
	}

	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv = &httptest.Server{Listener: l2, Config: &http.Server{Handler: handler}}
	srv.Start()
	expectChanges(probe(true), "")
	expectChanges(probe(true), "")
	expectChanges(probe(true), "shop-down:ALARM>OK shop-lost:ALARM>OK")

	for _, st := range e.States() {
		if st.State != alarm.StateOK {
			t.Errorf("%s is %s at the end", st.Name, st.State)
		}
	}
}
