package plan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/plan"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"35d", 35 * plan.Day},
		{"2w", 14 * plan.Day},
		{"1h30m", 90 * time.Minute},
		{"1d12h", 36 * time.Hour},
		{"2w3d4h", 17*plan.Day + 4*time.Hour},
		{"90s", 90 * time.Second},
		{"1.5h", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{" 7d ", 7 * plan.Day},
		{"+1h", time.Hour},
		{"0s", 0},
	}
	for _, tt := range tests {
		got, err := plan.ParseDuration(tt.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty duration"},
		{"-1d", `duration "-1d" is negative`},
		{"35", `number 35 has no unit`},
		{"3y", `unknown unit "y"`},
		{"1.5d", `"1.5d" must be a whole number of days`},
		{"d", `expected a number at "d"`},
		{"1h30", `number 30 has no unit`},
		{"99999999w", "too long"},
		{"106751d24h", "too long"},
		{"1..5h", `"1..5h" is not a valid duration part`},
	}
	for _, tt := range tests {
		_, err := plan.ParseDuration(tt.in)
		if err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want error", tt.in)
			continue
		}
		if !errs.Is(err, errs.Invalid) || errs.HintOf(err) == "" {
			t.Errorf("ParseDuration(%q) = %v (kind %v, hint %q), want errs.Invalid with a hint", tt.in, err, errs.KindOf(err), errs.HintOf(err))
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDuration(%q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0"},
		{35 * plan.Day, "35d"},
		{36 * time.Hour, "1d12h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour, "1h"},
		{7*plan.Day + time.Second, "7d1s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := plan.FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"35d", "2w", "1h30m", "0", "-1h", "1.5h", "9223372036s", "1µs", "7d7d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := plan.ParseDuration(s)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("ParseDuration(%q): error of kind %v, want invalid: %v", s, errs.KindOf(err), err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		back, err := plan.ParseDuration(plan.FormatDuration(d))
		if err != nil || back != d {
			t.Fatalf("round trip of %q: FormatDuration = %q, parsed back %v, %v", s, plan.FormatDuration(d), back, err)
		}
	})
}
