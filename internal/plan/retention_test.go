package plan_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/plan"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// verdict is the part of a Decision the tables compare: "keep: reasons" or "drop: reasons".
func verdicts(ds []plan.Decision) map[string]string {
	out := make(map[string]string, len(ds))
	for _, d := range ds {
		v := "drop"
		if d.Keep {
			v = "keep"
		}
		out[d.ID] = v + ": " + strings.Join(d.Reasons, "; ")
	}
	return out
}

func TestApply(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	newYork := mustLoc(t, "America/New_York")
	tokyo := mustLoc(t, "Asia/Tokyo")
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	now := utc(2026, 11, 24, 12, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }

	tests := []struct {
		name   string
		r      plan.Retention
		now    time.Time
		loc    *time.Location
		points []plan.Candidate
		want   map[string]string
	}{
		{
			name: "keep_last keeps the n newest",
			r:    plan.Retention{KeepLast: 2},
			points: []plan.Candidate{
				{ID: "a", Time: ago(3 * time.Hour)}, {ID: "b", Time: ago(2 * time.Hour)}, {ID: "c", Time: ago(time.Hour)},
			},
			want: map[string]string{"c": "keep: last 1", "b": "keep: last 2", "a": "drop: no keep rule matched"},
		},
		{
			name: "daily buckets follow the local calendar across spring forward",
			r:    plan.Retention{KeepDaily: 2},
			now:  utc(2026, 4, 1, 0, 0),
			loc:  berlin,
			points: []plan.Candidate{
				{ID: "sat-late", Time: time.Date(2026, 3, 28, 23, 30, 0, 0, berlin)},
				{ID: "sun-early", Time: time.Date(2026, 3, 29, 0, 30, 0, 0, berlin)},
				{ID: "sun-after-jump", Time: time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)},
				{ID: "mon", Time: time.Date(2026, 3, 30, 1, 0, 0, 0, berlin)},
			},
			want: map[string]string{
				"mon":            "keep: daily 2026-03-30",
				"sun-after-jump": "keep: daily 2026-03-29",
				"sun-early":      "drop: no keep rule matched",
				"sat-late":       "drop: no keep rule matched",
			},
		},
		{
			name: "the same points bucketed in UTC",
			r:    plan.Retention{KeepDaily: 2},
			now:  utc(2026, 4, 1, 0, 0),
			loc:  time.UTC,
			points: []plan.Candidate{
				{ID: "sat-late", Time: time.Date(2026, 3, 28, 23, 30, 0, 0, berlin)},
				{ID: "sun-early", Time: time.Date(2026, 3, 29, 0, 30, 0, 0, berlin)},
				{ID: "sun-after-jump", Time: time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)},
				{ID: "mon", Time: time.Date(2026, 3, 30, 1, 0, 0, 0, berlin)},
			},
			want: map[string]string{
				// In UTC, Monday 01:00 Berlin is Sunday 23:00 and Sunday 00:30 is Saturday.
				"mon":            "keep: daily 2026-03-29",
				"sun-after-jump": "drop: no keep rule matched",
				"sun-early":      "keep: daily 2026-03-28",
				"sat-late":       "drop: no keep rule matched",
			},
		},
		{
			name: "hourly keeps both copies of the hour repeated at fall back",
			r:    plan.Retention{KeepHourly: 3},
			now:  utc(2026, 11, 2, 0, 0),
			loc:  newYork,
			points: []plan.Candidate{
				{ID: "0030", Time: utc(2026, 11, 1, 4, 30)},     // 00:30 EDT
				{ID: "0130-edt", Time: utc(2026, 11, 1, 5, 30)}, // 01:30 EDT
				{ID: "0145-edt", Time: utc(2026, 11, 1, 5, 45)}, // 01:45 EDT
				{ID: "0130-est", Time: utc(2026, 11, 1, 6, 30)}, // 01:30 EST
				{ID: "0150-est", Time: utc(2026, 11, 1, 6, 50)}, // 01:50 EST
			},
			want: map[string]string{
				"0150-est": "keep: hourly 2026-11-01T01:00-05:00",
				"0130-est": "drop: no keep rule matched",
				"0145-edt": "keep: hourly 2026-11-01T01:00-04:00",
				"0130-edt": "drop: no keep rule matched",
				"0030":     "keep: hourly 2026-11-01T00:00-04:00",
			},
		},
		{
			name: "weekly uses ISO weeks across the year boundary",
			r:    plan.Retention{KeepWeekly: 2},
			now:  utc(2027, 1, 10, 0, 0),
			points: []plan.Candidate{
				{ID: "mon-dec-28", Time: utc(2026, 12, 28, 12, 0)},
				{ID: "fri-jan-1", Time: utc(2027, 1, 1, 12, 0)},
				{ID: "mon-jan-4", Time: utc(2027, 1, 4, 12, 0)},
			},
			want: map[string]string{
				"mon-jan-4":  "keep: weekly 2027-W01",
				"fri-jan-1":  "keep: weekly 2026-W53",
				"mon-dec-28": "drop: no keep rule matched",
			},
		},
		{
			name: "yearly and monthly buckets in the caller's zone",
			r:    plan.Retention{KeepYearly: 2, KeepMonthly: 1},
			now:  utc(2026, 2, 1, 0, 0),
			loc:  tokyo,
			points: []plan.Candidate{
				{ID: "2024", Time: utc(2024, 6, 1, 0, 0)},
				{ID: "nye-utc", Time: utc(2025, 12, 31, 23, 0)}, // already 2026-01-01 in Tokyo
				{ID: "jan-2", Time: utc(2026, 1, 2, 0, 0)},
			},
			want: map[string]string{
				"jan-2":   "keep: monthly 2026-01; yearly 2026",
				"nye-utc": "drop: no keep rule matched",
				"2024":    "keep: yearly 2024",
			},
		},
		{
			name: "buckets count only periods that hold a point",
			r:    plan.Retention{KeepDaily: 2},
			points: []plan.Candidate{
				{ID: "today", Time: ago(time.Hour)},
				{ID: "ten-days", Time: ago(10 * plan.Day)},
				{ID: "twenty-days", Time: ago(20 * plan.Day)},
			},
			want: map[string]string{
				"today":       "keep: daily 2026-11-24",
				"ten-days":    "keep: daily 2026-11-14",
				"twenty-days": "drop: no keep rule matched",
			},
		},
		{
			name: "keep_within counts from now, not from the newest point",
			r:    plan.Retention{KeepWithin: 7 * plan.Day},
			points: []plan.Candidate{
				{ID: "3d", Time: ago(3 * plan.Day)}, {ID: "7d", Time: ago(7 * plan.Day)}, {ID: "10d", Time: ago(10 * plan.Day)},
			},
			want: map[string]string{"3d": "keep: within 7d", "7d": "keep: within 7d", "10d": "drop: no keep rule matched"},
		},
		{
			name: "the newest point is kept even when no rule keeps it",
			r:    plan.Retention{KeepWithin: 2 * plan.Day},
			points: []plan.Candidate{
				{ID: "5d", Time: ago(5 * plan.Day)}, {ID: "6d", Time: ago(6 * plan.Day)},
			},
			want: map[string]string{"5d": "keep: newest", "6d": "drop: no keep rule matched"},
		},
		{
			name: "delete_after removes points a keep rule would keep",
			r:    plan.Retention{KeepLast: 5, KeepDaily: 7, DeleteAfter: 35 * plan.Day},
			points: []plan.Candidate{
				{ID: "1d", Time: ago(plan.Day)}, {ID: "35d", Time: ago(35 * plan.Day)}, {ID: "40d", Time: ago(40 * plan.Day)},
			},
			want: map[string]string{
				"1d":  "keep: last 1; daily 2026-11-23",
				"35d": "keep: last 2; daily 2026-10-20",
				"40d": "drop: older than delete_after 35d",
			},
		},
		{
			name: "delete_after removes even the newest point",
			r:    plan.Retention{KeepLast: 3, DeleteAfter: 30 * plan.Day},
			points: []plan.Candidate{
				{ID: "31d", Time: ago(31 * plan.Day)},
			},
			want: map[string]string{"31d": "drop: older than delete_after 30d"},
		},
		{
			name: "delete_after alone keeps everything younger",
			r:    plan.Retention{DeleteAfter: 90 * plan.Day},
			points: []plan.Candidate{
				{ID: "10d", Time: ago(10 * plan.Day)}, {ID: "100d", Time: ago(100 * plan.Day)},
			},
			want: map[string]string{"10d": "keep: within delete_after 90d", "100d": "drop: older than delete_after 90d"},
		},
		{
			name: "points dated in the future are kept and not counted",
			r:    plan.Retention{KeepLast: 1},
			points: []plan.Candidate{
				{ID: "2099", Time: utc(2099, 1, 1, 0, 0)}, {ID: "1d", Time: ago(plan.Day)}, {ID: "2d", Time: ago(2 * plan.Day)},
			},
			want: map[string]string{
				"2099": "keep: dated in the future; not counted by any rule",
				"1d":   "keep: last 1",
				"2d":   "drop: no keep rule matched",
			},
		},
		{
			name: "a flood of points cannot evict what keep_within protects",
			r:    plan.Retention{KeepLast: 2, KeepWithin: plan.Day},
			points: []plan.Candidate{
				{ID: "f1", Time: ago(time.Minute)}, {ID: "f2", Time: ago(2 * time.Minute)}, {ID: "f3", Time: ago(3 * time.Minute)},
				{ID: "real", Time: ago(12 * time.Hour)}, {ID: "old", Time: ago(2 * plan.Day)},
			},
			want: map[string]string{
				"f1": "keep: last 1; within 1d", "f2": "keep: last 2; within 1d", "f3": "keep: within 1d",
				"real": "keep: within 1d", "old": "drop: no keep rule matched",
			},
		},
		{
			name: "keep_tags by key or key=value",
			r:    plan.Retention{KeepTags: []string{"tier=gold", "legal"}},
			points: []plan.Candidate{
				{ID: "new", Time: ago(time.Hour)},
				{ID: "gold", Time: ago(2 * time.Hour), Tags: map[string]string{"tier": "gold"}},
				{ID: "silver", Time: ago(3 * time.Hour), Tags: map[string]string{"tier": "silver"}},
				{ID: "hold", Time: ago(4 * time.Hour), Tags: map[string]string{"legal": ""}},
			},
			want: map[string]string{
				"new": "keep: newest", "gold": "keep: tag tier=gold", "silver": "drop: no keep rule matched", "hold": "keep: tag legal",
			},
		},
		{
			name: "the zero policy keeps everything",
			r:    plan.Retention{},
			points: []plan.Candidate{
				{ID: "a", Time: ago(time.Hour)}, {ID: "b", Time: ago(1000 * plan.Day)},
			},
			want: map[string]string{"a": "keep: no retention policy", "b": "keep: no retention policy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.now
			if n.IsZero() {
				n = now
			}
			got := plan.Apply(tt.points, tt.r, n, tt.loc)
			if len(got) != len(tt.points) {
				t.Fatalf("got %d decisions for %d points", len(got), len(tt.points))
			}
			if g := verdicts(got); !reflect.DeepEqual(g, tt.want) {
				for id, w := range tt.want {
					if g[id] != w {
						t.Errorf("%s: got %q, want %q", id, g[id], w)
					}
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time.After(got[i-1].Time) {
					t.Errorf("decisions not newest first: %s after %s", got[i].ID, got[i-1].ID)
				}
			}
		})
	}
}

func TestRetentionValidate(t *testing.T) {
	tests := []struct {
		name string
		r    plan.Retention
		want string // "" means valid
	}{
		{"keep_last", plan.Retention{KeepLast: 1}, ""},
		{"delete_after alone", plan.Retention{DeleteAfter: plan.Day}, ""},
		{"tags alone", plan.Retention{KeepTags: []string{"legal"}}, ""},
		{"zero", plan.Retention{}, "refusing to remove every point; give at least one keep rule"},
		{"negative", plan.Retention{KeepDaily: -1, KeepWithin: -time.Hour}, "keep_daily is -1; counts cannot be negative; keep_within is -1h0m0s; durations cannot be negative"},
		{"empty tag", plan.Retention{KeepLast: 1, KeepTags: []string{"=x"}}, `keep_tags[0] "=x" has no tag key`},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && err == nil:
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
		case tt.want != "":
			if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: got %v, want invalid containing %q", tt.name, err, tt.want)
			}
		}
	}
}

func TestRetentionString(t *testing.T) {
	r := plan.Retention{KeepLast: 12, KeepDaily: 7, DeleteAfter: 35 * plan.Day}
	if got, want := r.String(), "keep_last 12, keep_daily 7, delete_after 35d"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (plan.Retention{}).String(); got != "no retention" {
		t.Errorf("zero String() = %q", got)
	}
}

// randomCase draws points and a valid policy from rng.
func randomCase(rng *rand.Rand, now time.Time) ([]plan.Candidate, plan.Retention) {
	n := rng.IntN(40)
	points := make([]plan.Candidate, n)
	for i := range points {
		age := time.Duration(rng.Int64N(int64(400 * plan.Day)))
		if rng.IntN(20) == 0 {
			age = -age // dated in the future
		}
		if rng.IntN(5) == 0 && i > 0 {
			age = now.Sub(points[rng.IntN(i)].Time) // same time as another point
		}
		tags := map[string]string{}
		if rng.IntN(3) == 0 {
			tags["tier"] = []string{"gold", "silver"}[rng.IntN(2)]
		}
		points[i] = plan.Candidate{ID: fmt.Sprintf("p%02d", i), Time: now.Add(-age), Tags: tags}
	}
	var r plan.Retention
	for r.Validate() != nil {
		r = plan.Retention{
			KeepLast: rng.IntN(4), KeepHourly: rng.IntN(4), KeepDaily: rng.IntN(8), KeepWeekly: rng.IntN(5),
			KeepMonthly: rng.IntN(13), KeepYearly: rng.IntN(3),
		}
		if rng.IntN(3) == 0 {
			r.KeepWithin = time.Duration(rng.IntN(30)) * plan.Day
		}
		if rng.IntN(3) == 0 {
			r.DeleteAfter = time.Duration(1+rng.IntN(200)) * plan.Day
		}
		if rng.IntN(4) == 0 {
			r.KeepTags = []string{"tier=gold"}
		}
	}
	return points, r
}

func TestApplyProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	locs := []*time.Location{time.UTC, mustLoc(t, "Europe/Berlin"), mustLoc(t, "Australia/Lord_Howe")}
	for i := range 2000 {
		points, r := randomCase(rng, now)
		loc := locs[i%len(locs)]
		got := plan.Apply(points, r, now, loc)
		if len(got) != len(points) {
			t.Fatalf("case %d: %d decisions for %d points", i, len(got), len(points))
		}

		// The newest point not dated in the future is kept unless delete_after removes it.
		var newest *plan.Candidate
		for j := range points {
			p := &points[j]
			if !p.Time.After(now) && (newest == nil || p.Time.After(newest.Time) || p.Time.Equal(newest.Time) && p.ID < newest.ID) {
				newest = p
			}
		}
		if newest != nil {
			for _, d := range got {
				if d.ID != newest.ID {
					continue
				}
				expired := r.DeleteAfter > 0 && now.Sub(newest.Time) > r.DeleteAfter
				if d.Keep == expired {
					t.Fatalf("case %d (%v): newest point %s at %v: keep=%v, reasons %v", i, r, d.ID, newest.Time, d.Keep, d.Reasons)
				}
			}
		}
		for _, d := range got {
			if len(d.Reasons) == 0 {
				t.Fatalf("case %d: decision for %s has no reason", i, d.ID)
			}
			if d.Keep && r.DeleteAfter > 0 && now.Sub(d.Time) > r.DeleteAfter {
				t.Fatalf("case %d: %s is older than delete_after but kept: %v", i, d.ID, d.Reasons)
			}
		}

		// Decisions do not depend on input order.
		shuffled := append([]plan.Candidate(nil), points...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if again := plan.Apply(shuffled, r, now, loc); !reflect.DeepEqual(again, got) {
			t.Fatalf("case %d: decisions changed with input order", i)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	points := make([]plan.Candidate, 10000)
	for i := range points {
		points[i] = plan.Candidate{ID: fmt.Sprint(i), Time: now.Add(-time.Duration(i) * 5 * time.Minute)}
	}
	r := plan.Retention{KeepLast: 12, KeepHourly: 48, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12, KeepYearly: 3, DeleteAfter: 400 * plan.Day}
	loc := mustLoc(b, "Europe/Berlin")
	b.ReportAllocs()
	for b.Loop() {
		plan.Apply(points, r, now, loc)
	}
}
