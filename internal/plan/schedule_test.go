package plan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/plan"
)

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ expr, tz, want string }{
		{"", "", "empty schedule"},
		{"61 * * * *", "", `schedule "61 * * * *": minute field "61": end of range (61) above maximum (59)`},
		{"* 24 * * *", "", `hour field "24"`},
		{"* * 0 * *", "", `day-of-month field "0": beginning of range (0) below minimum (1)`},
		{"* * * foo *", "", `month field "foo"`},
		{"* * * * 8", "", `day-of-week field "8"`},
		{"*/0 * * * *", "", `minute field "*/0": step of range should be a positive number`},
		{"* * * *", "", `has 4 fields; cron needs 5`},
		{"0 * * * * *", "", `has 6 fields; cron needs 5`},
		{"0 0 31 2 *", "", `never fires`},
		{"@fortnightly", "", "unknown descriptor @fortnightly"},
		{"@daily 3", "", "@daily takes no argument"},
		{"@every", "", "@every needs a duration"},
		{"@every 10x", "", `unknown unit "x"`},
		{"@every 30s", "", "shorter than the minimum 1m"},
		{"@every 90.5s", "", "not a whole number of seconds"},
		{"0 2 * * *", "Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		{"0 2 * * *", "Local", `time zone "Local" depends on the host`},
		{"CRON_TZ=Europe/Berlin 0 2 * * *", "Europe/Paris", `names time zone "Europe/Berlin" but the timezone setting is "Europe/Paris"`},
		{"CRON_TZ=Europe/Berlin", "", "empty schedule"},
	}
	for _, tt := range tests {
		_, err := plan.ParseSchedule(tt.expr, tt.tz)
		if err == nil {
			t.Errorf("ParseSchedule(%q, %q) succeeded, want error", tt.expr, tt.tz)
			continue
		}
		if !errs.Is(err, errs.Invalid) || errs.HintOf(err) == "" {
			t.Errorf("ParseSchedule(%q, %q) = %v, want errs.Invalid with a hint", tt.expr, tt.tz, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSchedule(%q, %q) = %q, want it to contain %q", tt.expr, tt.tz, err, tt.want)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		expr, tz string
		after    time.Time
		want     []time.Time // successive Next results
	}{
		{"*/5 * * * *", "", utc(2026, 11, 24, 13, 2), []time.Time{utc(2026, 11, 24, 13, 5), utc(2026, 11, 24, 13, 10)}},
		{"*/5 * * * *", "", utc(2026, 11, 24, 13, 5), []time.Time{utc(2026, 11, 24, 13, 10)}},
		{"@hourly", "", utc(2026, 12, 31, 23, 30), []time.Time{utc(2027, 1, 1, 0, 0), utc(2027, 1, 1, 1, 0)}},
		{"@daily", "Europe/Berlin", utc(2026, 6, 1, 12, 0), []time.Time{utc(2026, 6, 1, 22, 0)}},
		{"CRON_TZ=Europe/Berlin @daily", "", utc(2026, 12, 1, 12, 0), []time.Time{utc(2026, 12, 1, 23, 0)}},
		{"TZ=America/New_York 0 9 * * mon-fri", "", utc(2026, 11, 27, 15, 0), []time.Time{utc(2026, 11, 30, 14, 0)}},
		{"@weekly", "", utc(2026, 11, 24, 0, 0), []time.Time{utc(2026, 11, 29, 0, 0)}},
		{"@monthly", "", utc(2026, 12, 15, 0, 0), []time.Time{utc(2027, 1, 1, 0, 0)}},
		{"@yearly", "", utc(2026, 12, 15, 0, 0), []time.Time{utc(2027, 1, 1, 0, 0)}},
		{"0 0 29 2 *", "", utc(2026, 3, 1, 0, 0), []time.Time{utc(2028, 2, 29, 0, 0)}},
		// @every counts from the Unix epoch, whatever the starting point.
		{"@every 10m", "", utc(2026, 11, 24, 13, 2), []time.Time{utc(2026, 11, 24, 13, 10), utc(2026, 11, 24, 13, 20)}},
		{"@every 1d", "Europe/Berlin", utc(2026, 11, 24, 13, 2), []time.Time{utc(2026, 11, 25, 0, 0)}},
		{"@every 7m", "", time.Unix(0, 0).UTC(), []time.Time{time.Unix(420, 0).UTC()}},
		{"@every 7m", "", time.Unix(-1, 0).UTC(), []time.Time{time.Unix(0, 0).UTC()}},
		// Spring forward in Berlin: 02:30 does not exist on 29 March 2026; the run
		// happens when clocks jump to 03:00 CEST (01:00 UTC).
		{"30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12, 0), []time.Time{
			utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)}},
		// Fall back: 02:30 happens twice on 25 October 2026; the run happens once.
		{"30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12, 0), []time.Time{
			utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)}},
		// Hourly and more frequent schedules follow real time through both changes.
		{"30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 45), []time.Time{
			utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 30)}},
		{"*/30 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 15), []time.Time{
			utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)}},
	}
	for _, tt := range tests {
		s, err := plan.ParseSchedule(tt.expr, tt.tz)
		if err != nil {
			t.Errorf("ParseSchedule(%q, %q): %v", tt.expr, tt.tz, err)
			continue
		}
		at := tt.after
		for i, want := range tt.want {
			got := s.Next(at)
			if !got.Equal(want) {
				t.Errorf("%q in %q: Next #%d after %v = %v, want %v", tt.expr, tt.tz, i+1, at, got.UTC(), want)
				break
			}
			if got.Location() != at.Location() {
				t.Errorf("%q: Next returned location %v, want %v", tt.expr, got.Location(), at.Location())
			}
			at = got
		}
	}
}

func TestScheduleString(t *testing.T) {
	tests := []struct{ expr, tz, want string }{
		{" */5  * * * * ", "", "*/5 * * * *"},
		{"0 2 * * *", "Europe/Berlin", "CRON_TZ=Europe/Berlin 0 2 * * *"},
		{"CRON_TZ=UTC @daily", "", "@daily"},
		{"@every 90m", "", "@every 1h30m"},
		{"@every 2w", "", "@every 14d"},
	}
	for _, tt := range tests {
		s, err := plan.ParseSchedule(tt.expr, tt.tz)
		if err != nil {
			t.Fatalf("ParseSchedule(%q): %v", tt.expr, err)
		}
		if got := s.String(); got != tt.want {
			t.Errorf("String() of %q = %q, want %q", tt.expr, got, tt.want)
		}
		again, err := plan.ParseSchedule(s.String(), "")
		if err != nil || again.String() != s.String() || again.Location().String() != s.Location().String() {
			t.Errorf("round trip of %q: %q, %v", tt.expr, again.String(), err)
		}
	}
	var zero plan.Schedule
	if !zero.IsZero() || !zero.Next(time.Now()).IsZero() || zero.String() != "" || zero.Between(time.Unix(0, 0), time.Now()) != nil {
		t.Error("the zero Schedule must never fire")
	}
}

func TestScheduleBetween(t *testing.T) {
	s, err := plan.ParseSchedule("0 */6 * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	got := s.Between(from, from.Add(24*time.Hour))
	want := []time.Time{from.Add(6 * time.Hour), from.Add(12 * time.Hour), from.Add(18 * time.Hour), from.Add(24 * time.Hour)}
	if len(got) != len(want) {
		t.Fatalf("Between = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("Between[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if got := s.Between(from, from.Add(time.Hour)); len(got) != 0 {
		t.Errorf("Between over an hour without a run = %v", got)
	}

	every, err := plan.ParseSchedule("@every 1m", "")
	if err != nil {
		t.Fatal(err)
	}
	capped := every.Between(from, from.Add(365*plan.Day))
	if len(capped) != plan.MaxBetween {
		t.Fatalf("Between over a year of minutes returned %d times, want the cap %d", len(capped), plan.MaxBetween)
	}
	if !capped[0].Equal(from.Add(time.Minute)) || !capped[len(capped)-1].Equal(from.Add(plan.MaxBetween*time.Minute)) {
		t.Errorf("capped Between should return the oldest runs, got %v .. %v", capped[0], capped[len(capped)-1])
	}
}

func TestWindow(t *testing.T) {
	at := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	w := plan.Window{Start: time.Hour, Completion: 8 * time.Hour}
	if w.StartExpired(at, at.Add(time.Hour)) {
		t.Error("a job may still start at the end of its start window")
	}
	if !w.StartExpired(at, at.Add(time.Hour+time.Second)) {
		t.Error("a job not started within the start window must expire")
	}
	started := at.Add(30 * time.Minute)
	if w.CompletionExpired(started, started.Add(8*time.Hour)) || !w.CompletionExpired(started, started.Add(8*time.Hour+1)) {
		t.Error("completion window is measured from the start")
	}
	if d, ok := w.StartDeadline(at); !ok || !d.Equal(at.Add(time.Hour)) {
		t.Errorf("StartDeadline = %v, %v", d, ok)
	}
	if d, ok := w.CompletionDeadline(started); !ok || !d.Equal(started.Add(8*time.Hour)) {
		t.Errorf("CompletionDeadline = %v, %v", d, ok)
	}
	var none plan.Window
	if none.StartExpired(at, at.Add(1000*plan.Day)) || none.CompletionExpired(at, at.Add(1000*plan.Day)) {
		t.Error("the zero Window never expires")
	}
	if _, ok := none.StartDeadline(at); ok {
		t.Error("the zero Window has no start deadline")
	}
	if err := (plan.Window{Start: -time.Minute}).Validate(); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "start_window is -1m0s") {
		t.Errorf("Validate of a negative window = %v", err)
	}
	if err := w.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "@every 10m", "CRON_TZ=Europe/Berlin 0 2 * * *", "0 0 31 2 *", "1-5/2 0,12 * jan-mar mon", "TZ= x"} {
		f.Add(s)
	}
	from := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := plan.ParseSchedule(expr, "")
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("ParseSchedule(%q): kind %v: %v", expr, errs.KindOf(err), err)
			}
			return
		}
		prev := from
		for _, at := range s.Between(from, from.AddDate(0, 0, 2)) {
			if !at.After(prev) {
				t.Fatalf("%q: Between not increasing: %v then %v", expr, prev, at)
			}
			prev = at
		}
	})
}

func BenchmarkScheduleNext(b *testing.B) {
	s, err := plan.ParseSchedule("30 2 * * *", "Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		at = s.Next(at)
	}
}
