package plan

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Day and Week are the calendar-free units ParseDuration adds to Go's: a day is always 24
// hours and a week 7 days, whatever daylight-saving time does to a wall clock.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

const durationHint = `write a number followed by a unit, several parts allowed: "35d", "2w", "1h30m", "90s" (units: w, d, h, m, s, ms)`

// ParseDuration parses a non-negative duration such as "35d", "2w", "1d12h" or "1h30m".
// On top of Go's units (h, m, s, ms, us, ns; fractions allowed) it accepts whole days
// ("d", 24h) and weeks ("w", 7d). A bare "0" is zero. Anything else — an empty string,
// a missing unit, a negative sign, a value beyond about 290 years — is an errs.Invalid
// with a hint showing the accepted forms.
func ParseDuration(s string) (time.Duration, error) {
	const op = "plan.ParseDuration"
	bad := func(format string, args ...any) (time.Duration, error) {
		return 0, errs.Errorf(op, errs.Invalid, format, args...).WithHint(durationHint)
	}
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return bad("empty duration")
	case in == "0":
		return 0, nil
	case strings.HasPrefix(in, "-"):
		return bad("duration %q is negative; durations here count time forward", s)
	case strings.HasPrefix(in, "+"):
		in = in[1:]
	}
	var total time.Duration
	rest := in
	for rest != "" {
		// A part is digits (with an optional fraction) followed by letters.
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		if num == "" {
			return bad("duration %q: expected a number at %q", s, rest)
		}
		if unit == "" {
			return bad("duration %q: number %s has no unit", s, num)
		}
		var part time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseUint(num, 10, 63)
			if err != nil {
				return bad("duration %q: %q must be a whole number of %s", s, num+unit, map[string]string{"d": "days", "w": "weeks"}[unit])
			}
			size := Day
			if unit == "w" {
				size = Week
			}
			if n > uint64(math.MaxInt64/int64(size)) {
				return bad("duration %q is too long (at most about 290 years)", s)
			}
			part = time.Duration(n) * size
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				if strings.Contains(err.Error(), "unknown unit") {
					return bad("duration %q: unknown unit %q", s, unit)
				}
				return bad("duration %q: %q is not a valid duration part", s, num+unit)
			}
			part = d
		}
		if total > math.MaxInt64-part {
			return bad("duration %q is too long (at most about 290 years)", s)
		}
		total += part
		rest = rest[j:]
	}
	return total, nil
}

// FormatDuration writes d the way ParseDuration reads it, using days for every whole 24
// hours (never weeks): 35*Day is "35d", 36*time.Hour is "1d12h", 90*time.Minute is
// "1h30m". ParseDuration(FormatDuration(d)) == d for every non-negative d.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	if d < 0 {
		// Never produced by ParseDuration; keep the output honest rather than wrong.
		b.WriteByte('-')
		if d == math.MinInt64 {
			return "-" + time.Duration(math.MaxInt64).String()
		}
		d = -d
	}
	if days := d / Day; days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * Day
	}
	if d > 0 {
		s := d.String()
		// time.Duration.String writes "1h0m0s" for an hour; trim the zero tails.
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		b.WriteString(s)
	}
	return b.String()
}
