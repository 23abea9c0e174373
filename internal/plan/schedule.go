package plan

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// Schedules name IANA time zones; embedding the zone database keeps them resolvable
	// on hosts and container images that ship without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/rewind-dr/rewind/internal/errs"
)

// MaxBetween caps the number of times Schedule.Between returns.
const MaxBetween = 1000

// MinEvery is the shortest interval "@every" accepts.
const MinEvery = time.Minute

const scheduleHint = `use five cron fields "minute hour day-of-month month day-of-week" ` +
	`(minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or jan-dec, day-of-week 0-6 or sun-sat; ` +
	`each * or a list like 1,15 or a range like 1-5, optionally /step), or one of ` +
	`@hourly, @daily, @weekly, @monthly, @yearly, @every 10m`

var fieldNames = [5]string{"minute", "hour", "day-of-month", "month", "day-of-week"}

// fieldParser reads exactly the five standard fields; descriptors are handled here.
var fieldParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Schedule says when a plan rule fires. The zero Schedule never fires.
//
// A cron schedule is evaluated in its time zone (UTC unless one is given), so
// "0 2 * * *" with Europe/Berlin fires at 02:00 Berlin time in winter and summer alike.
// Daylight-saving changes follow classic cron: a schedule that fires at particular hours
// ("30 2 * * *") fires once at the moment clocks spring forward if its time falls in the
// skipped hour, and only once (the first time) in a repeated hour when clocks fall back.
// A schedule that fires every hour or more often ("*/5 * * * *", "15 * * * *") follows
// real time instead: it skips nothing, and fires in both copies of a repeated hour. Day-of-month and
// day-of-week combine as in classic cron: when both are restricted, a day matching either
// fires.
//
// "@every d" fires at fixed multiples of d counted from the Unix epoch (00:00 UTC on 1
// January 1970), not from when the server started, so every replica and every restart
// agrees on the run times and missed runs can be computed. For wall-clock alignment in a
// time zone use a cron expression instead.
type Schedule struct {
	expr  string // the expression without a time zone prefix
	loc   *time.Location
	spec  *cron.SpecSchedule // evaluated in loc
	wall  *cron.SpecSchedule // the same fields evaluated in UTC, to test wall-clock times
	every time.Duration
}

// ParseSchedule parses a cron expression — five fields, or @hourly, @daily (@midnight),
// @weekly, @monthly, @yearly (@annually), or "@every 10m" — evaluated in the IANA time
// zone tz ("" means UTC). The zone may instead be given as a "CRON_TZ=Europe/Berlin "
// (or "TZ=") prefix of expr; giving two different zones is an error. Errors are
// errs.Invalid and name the offending field.
func ParseSchedule(expr string, tz string) (Schedule, error) {
	const op = "plan.ParseSchedule"
	bad := func(format string, args ...any) (Schedule, error) {
		return Schedule{}, errs.Errorf(op, errs.Invalid, format, args...).WithHint(scheduleHint)
	}
	s := strings.TrimSpace(expr)
	tz = strings.TrimSpace(tz)
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		zone, rest, _ := strings.Cut(s[len(prefix):], " ")
		if tz != "" && zone != tz {
			return Schedule{}, errs.Errorf(op, errs.Invalid, "schedule %q names time zone %q but the timezone setting is %q", expr, zone, tz).
				WithHint("give the time zone once, either as the timezone setting or as a CRON_TZ= prefix")
		}
		tz, s = zone, strings.TrimSpace(rest)
		break
	}
	loc, err := LoadLocation(tz)
	if err != nil {
		return Schedule{}, err
	}
	if s == "" {
		return bad("empty schedule")
	}

	if strings.HasPrefix(s, "@") {
		name, arg, _ := strings.Cut(s, " ")
		arg = strings.TrimSpace(arg)
		if name == "@every" {
			d, err := ParseDuration(arg)
			if err != nil {
				return bad("schedule %q: @every needs a duration like 10m or 1d: %v", expr, cause(err))
			}
			if d < MinEvery {
				return bad("schedule %q: @every %s is shorter than the minimum %s", expr, arg, FormatDuration(MinEvery))
			}
			if d%time.Second != 0 {
				return bad("schedule %q: @every %s is not a whole number of seconds", expr, arg)
			}
			return Schedule{expr: "@every " + FormatDuration(d), loc: loc, every: d}, nil
		}
		if arg != "" {
			return bad("schedule %q: %s takes no argument", expr, name)
		}
		var five string
		switch name {
		case "@yearly", "@annually":
			five = "0 0 1 1 *"
		case "@monthly":
			five = "0 0 1 * *"
		case "@weekly":
			five = "0 0 * * 0"
		case "@daily", "@midnight":
			five = "0 0 * * *"
		case "@hourly":
			five = "0 * * * *"
		default:
			return bad("schedule %q: unknown descriptor %s", expr, name)
		}
		sched, err := parseFive(five, loc)
		if err != nil {
			return Schedule{}, errs.E(op, errs.Internal, err)
		}
		return newCron(name, loc, sched), nil
	}

	fields := strings.Fields(s)
	if len(fields) != 5 {
		return bad("schedule %q has %d fields; cron needs 5 (minute hour day-of-month month day-of-week)", expr, len(fields))
	}
	// Parse each field alone so the error can name it.
	for i, f := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = f
		if _, err := fieldParser.Parse(strings.Join(probe, " ")); err != nil {
			msg := strings.TrimSuffix(err.Error(), ": "+f) // the library repeats the field
			return bad("schedule %q: %s field %q: %s", expr, fieldNames[i], f, msg)
		}
	}
	canon := strings.Join(fields, " ")
	sched, err := parseFive(canon, loc)
	if err != nil {
		return bad("schedule %q: %v", expr, err)
	}
	// A date that never exists ("0 0 31 2 *") would silently never run.
	ref := time.Date(2000, time.January, 1, 0, 0, 0, 0, loc)
	if sched.Next(ref).IsZero() {
		return bad("schedule %q never fires: no date matches its day-of-month and month fields", expr)
	}
	return newCron(canon, loc, sched), nil
}

func newCron(expr string, loc *time.Location, spec *cron.SpecSchedule) Schedule {
	wall := *spec
	wall.Location = time.UTC
	return Schedule{expr: expr, loc: loc, spec: spec, wall: &wall}
}

// cause returns the message of err without the operation prefix of an *errs.Error.
func cause(err error) string {
	var e *errs.Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err.Error()
	}
	return err.Error()
}

func parseFive(five string, loc *time.Location) (*cron.SpecSchedule, error) {
	s, err := fieldParser.Parse(five)
	if err != nil {
		return nil, err
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("cron returned %T for %q", s, five)
	}
	spec.Location = loc
	return spec, nil
}

// LoadLocation resolves an IANA time zone name ("Europe/Berlin"); "" and "UTC" are UTC.
// "Local" is refused because it would make a schedule mean different times on different
// hosts. Errors are errs.Invalid.
func LoadLocation(tz string) (*time.Location, error) {
	const op = "plan.LoadLocation"
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, errs.Errorf(op, errs.Invalid, `time zone "Local" depends on the host`).
			WithHint(`name the zone, e.g. "Europe/Berlin" or "America/New_York"`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "unknown time zone %q", tz).
			WithHint(`use an IANA time zone name such as "Europe/Berlin", "America/New_York" or "UTC"`)
	}
	return loc, nil
}

// IsZero reports whether s is the zero Schedule, which never fires.
func (s Schedule) IsZero() bool { return s.spec == nil && s.every == 0 }

// Location returns the time zone s is evaluated in (UTC for the zero Schedule).
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// String returns the expression in canonical form, with a CRON_TZ= prefix unless the
// zone is UTC: "*/5 * * * *", "CRON_TZ=Europe/Berlin 0 2 * * *", "@every 10m".
// ParseSchedule(s.String(), "") yields an equal schedule.
func (s Schedule) String() string {
	if s.IsZero() {
		return ""
	}
	if s.loc == nil || s.loc == time.UTC {
		return s.expr
	}
	return "CRON_TZ=" + s.loc.String() + " " + s.expr
}

// Next returns the first time s fires strictly after after, in after's location, or the
// zero time if s is the zero Schedule (or, for a cron expression, if it does not fire
// within five years).
func (s Schedule) Next(after time.Time) time.Time {
	switch {
	case s.every > 0:
		step := int64(s.every / time.Second)
		sec := after.Unix()
		n := sec / step
		if sec%step < 0 {
			n-- // floor division before the epoch
		}
		return time.Unix((n+1)*step, 0).In(after.Location())
	case s.spec != nil:
		return s.cronNext(after)
	}
	return time.Time{}
}

const allHours = 1<<24 - 1

// cronNext is spec.Next with classic cron's daylight-saving rules (see Schedule).
func (s Schedule) cronNext(after time.Time) time.Time {
	if s.spec.Hour&allHours == allHours {
		return s.spec.Next(after) // real time: the wall-clock gaps and repeats do not matter
	}
	t := after
	// A repeated hour holds at most 60 minutes that match; skip them all.
	for range 64 {
		c := s.spec.Next(t)
		if c.IsZero() {
			return c
		}
		if g, ok := s.springGap(t, c); ok {
			return g.In(after.Location())
		}
		if !s.repeated(c) {
			return c
		}
		t = c
	}
	return time.Time{}
}

// springGap looks for a spring-forward jump in (after, c) whose skipped wall-clock
// minutes contain a time the schedule matches, and returns the instant of the jump.
func (s Schedule) springGap(after, c time.Time) (time.Time, bool) {
	const step = 12 * time.Hour // DST changes are months apart
	lo := after
	_, loOff := lo.In(s.loc).Zone()
	for lo.Before(c) {
		hi := lo.Add(step)
		if hi.After(c) {
			hi = c
		}
		_, hiOff := hi.In(s.loc).Zone()
		if hiOff > loOff {
			// Narrow the jump down to the second.
			a, b := lo, hi
			for b.Sub(a) > time.Second {
				mid := a.Add(b.Sub(a) / 2)
				if _, off := mid.In(s.loc).Zone(); off == loOff {
					a = mid
				} else {
					b = mid
				}
			}
			jump := b.Truncate(time.Second)
			gap := time.Duration(hiOff-loOff) * time.Second
			wallEnd := wallAsUTC(jump.In(s.loc))
			if m := s.wall.Next(wallEnd.Add(-gap - time.Second)); m.Before(wallEnd) && jump.After(after) {
				return jump, true
			}
		}
		lo, loOff = hi, hiOff
	}
	return time.Time{}, false
}

// repeated reports whether c's wall-clock time already occurred shortly before c, in the
// hour that repeats when clocks fall back.
func (s Schedule) repeated(c time.Time) bool {
	lc := c.In(s.loc)
	_, now := lc.Zone()
	_, before := lc.Add(-3 * time.Hour).Zone()
	if before <= now {
		return false
	}
	earlier := lc.Add(-time.Duration(before-now) * time.Second)
	return wallAsUTC(earlier).Equal(wallAsUTC(lc))
}

// wallAsUTC returns the instant whose UTC wall clock reads what t's wall clock reads.
func wallAsUTC(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// Between returns the times s fires in the interval (from, to], oldest first: the runs a
// scheduler missed while it was down. It returns at most MaxBetween times, the oldest
// ones; a result of exactly MaxBetween times may be incomplete.
func (s Schedule) Between(from, to time.Time) []time.Time {
	var out []time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(to) && len(out) < MaxBetween; t = s.Next(t) {
		out = append(out, t)
	}
	return out
}
