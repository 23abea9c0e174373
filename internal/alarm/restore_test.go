package alarm_test

import (
	"context"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/monitor"
)

func TestRestore(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	since := now.Add(-time.Hour)
	specs := map[string]alarm.Spec{"web": {Monitor: "shop", Period: time.Minute}}
	newEval := func(t *testing.T) *alarm.Evaluator {
		t.Helper()
		e, err := alarm.NewEvaluator(specs, func() time.Time { return now },
			alarm.WithMonitors(map[string]time.Duration{"shop": time.Minute}))
		if err != nil {
			t.Fatal(err)
		}
		e.Observe(monitor.Sample{Monitor: "shop", Time: now.Add(-time.Second), Healthy: true})
		return e
	}
	tests := []struct {
		name     string
		restored alarm.State
		want     int // changes at the first evaluation
	}{
		{"same state announces nothing", alarm.StateOK, 0},
		{"another state announces the change from it", alarm.StateAlarm, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEval(t)
			err := e.Restore([]alarm.Status{
				{Name: "web", State: tt.restored, Reason: "stored reason", Since: since},
				{Name: "removed-from-config", State: alarm.StateAlarm, Since: since},
			})
			if err != nil {
				t.Fatal(err)
			}
			st := e.States()
			if len(st) != 1 || st[0].State != tt.restored || st[0].Reason != "stored reason" || !st[0].Since.Equal(since) {
				t.Fatalf("States after Restore: %+v", st)
			}
			changes := e.Evaluate(context.Background(), now)
			if len(changes) != tt.want {
				t.Fatalf("changes: %+v, want %d", changes, tt.want)
			}
			if tt.want == 1 {
				c := changes[0]
				if c.Previous != tt.restored || c.Current != alarm.StateOK || c.PreviousReason != "stored reason" ||
					!c.PreviousSince.Equal(since) {
					t.Fatalf("change: %+v", c)
				}
			}
		})
	}
	t.Run("refuses bad states", func(t *testing.T) {
		e := newEval(t)
		for _, bad := range []alarm.Status{
			{Name: "web", State: "FIRING", Since: since},
			{Name: "web", State: alarm.StateOK},
		} {
			if err := e.Restore([]alarm.Status{bad}); !errs.Is(err, errs.Invalid) {
				t.Errorf("Restore(%+v) = %v, want an invalid error", bad, err)
			}
		}
		if st := e.States(); st[0].State != alarm.StateInsufficient {
			t.Errorf("a refused Restore changed the state: %+v", st)
		}
	})
}
