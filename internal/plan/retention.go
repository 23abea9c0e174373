package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Retention says which recovery points of one group to keep. The caller decides what a
// group is (one resource, one host and path set, one vault) and calls Apply once per group.
//
// The keep rules follow restic's forget:
//
//   - KeepLast n keeps the n newest points.
//   - KeepHourly, KeepDaily, KeepWeekly, KeepMonthly and KeepYearly n each keep the newest
//     point of each of the n newest local calendar hours, days, ISO weeks, months or years
//     that hold a point, counted from the newest point. Buckets without a point are not
//     counted: keep_daily 7 keeps 7 daily points even when backups skipped a week.
//   - KeepWithin d keeps every point taken within d before now, however many there are.
//   - KeepTags keeps every point carrying one of the tags; an entry is "key" (any value)
//     or "key=value".
//
// A point is kept if any rule keeps it. Apply also always keeps the newest point, so a
// policy can never remove the last good copy of a group by itself.
//
// DeleteAfter is a lifecycle limit in the manner of AWS Backup: a point older than
// DeleteAfter is removed even if a keep rule (or the newest-point rule) would keep it. It
// is the only way retention removes the newest point, and it is meant for compliance
// ("no backup older than 35 days may exist"). With DeleteAfter alone and no keep rule,
// every point younger than DeleteAfter is kept.
//
// Guarding against retention poisoning: someone able to create points (a compromised
// host, a runaway script) could flood a group with points so that count rules push the
// real ones out. KeepWithin is measured from now — not, as restic does, from the newest
// point — and keeps everything in its window regardless of count, so a flood cannot evict
// recent points and a point stamped far in the future cannot shift the window. Points
// dated after now are kept and never counted by any rule, so they cannot displace real
// points from KeepLast or the calendar buckets either. Give every policy a KeepWithin that
// covers the time you need to notice an attack.
//
// Negative values are invalid; Validate reports them. The zero Retention has no rule at
// all; Validate rejects it, and Apply keeps every point under it.
type Retention struct {
	KeepLast    int
	KeepHourly  int
	KeepDaily   int
	KeepWeekly  int
	KeepMonthly int
	KeepYearly  int
	KeepWithin  time.Duration
	KeepTags    []string
	DeleteAfter time.Duration
}

// Candidate is one recovery point offered to Apply.
type Candidate struct {
	ID   string
	Time time.Time
	Tags map[string]string
}

// Decision is Apply's verdict on one Candidate. Reasons are for people: why the point is
// kept ("last 3" for the third newest, "daily 2026-11-24", "within 7d", "tag plan=gold",
// "newest") or removed ("older than delete_after 35d", "no keep rule matched").
type Decision struct {
	ID      string
	Time    time.Time
	Keep    bool
	Reasons []string
}

// hasKeepRule reports whether any keep rule is set.
func (r Retention) hasKeepRule() bool {
	return r.KeepLast > 0 || r.KeepHourly > 0 || r.KeepDaily > 0 || r.KeepWeekly > 0 ||
		r.KeepMonthly > 0 || r.KeepYearly > 0 || r.KeepWithin > 0 || len(r.KeepTags) > 0
}

// IsZero reports whether r has no rule at all (no keep rule and no DeleteAfter).
func (r Retention) IsZero() bool { return !r.hasKeepRule() && r.DeleteAfter <= 0 }

// Validate reports every problem with r in one errs.Invalid: negative counts or
// durations, empty KeepTags entries, and a policy with no rule at all, which would
// otherwise be read as "remove every point".
func (r Retention) Validate() error {
	const op = "plan.Retention.Validate"
	var problems []string
	for _, c := range []struct {
		name string
		n    int
	}{
		{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily},
		{"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly},
	} {
		if c.n < 0 {
			problems = append(problems, fmt.Sprintf("%s is %d; counts cannot be negative", c.name, c.n))
		}
	}
	if r.KeepWithin < 0 {
		problems = append(problems, fmt.Sprintf("keep_within is %s; durations cannot be negative", r.KeepWithin))
	}
	if r.DeleteAfter < 0 {
		problems = append(problems, fmt.Sprintf("delete_after is %s; durations cannot be negative", r.DeleteAfter))
	}
	for i, t := range r.KeepTags {
		if k, _, _ := strings.Cut(t, "="); strings.TrimSpace(k) == "" {
			problems = append(problems, fmt.Sprintf("keep_tags[%d] %q has no tag key; write key or key=value", i, t))
		}
	}
	if len(problems) > 0 {
		return errs.E(op, errs.Invalid, errors.New(strings.Join(problems, "; "))).
			WithHint("use zero or a positive number for each keep rule and a duration like 7d for keep_within and delete_after")
	}
	if r.IsZero() {
		return errs.Errorf(op, errs.Invalid, "refusing to remove every point; give at least one keep rule").
			WithHint("set keep_last, keep_daily, keep_within or another keep rule (or delete_after alone to expire points by age)")
	}
	return nil
}

// String describes r in the config's words, e.g. "keep_last 12, keep_daily 7,
// delete_after 35d", or "no retention" for the zero policy.
func (r Retention) String() string {
	var parts []string
	add := func(name string, n int) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("keep_last", r.KeepLast)
	add("keep_hourly", r.KeepHourly)
	add("keep_daily", r.KeepDaily)
	add("keep_weekly", r.KeepWeekly)
	add("keep_monthly", r.KeepMonthly)
	add("keep_yearly", r.KeepYearly)
	if r.KeepWithin > 0 {
		parts = append(parts, "keep_within "+FormatDuration(r.KeepWithin))
	}
	if len(r.KeepTags) > 0 {
		parts = append(parts, "keep_tags "+strings.Join(r.KeepTags, ","))
	}
	if r.DeleteAfter > 0 {
		parts = append(parts, "delete_after "+FormatDuration(r.DeleteAfter))
	}
	if len(parts) == 0 {
		return "no retention"
	}
	return strings.Join(parts, ", ")
}

// bucketRule is one calendar keep rule.
type bucketRule struct {
	name  string
	count int
	key   func(t time.Time) string // t is already in the caller's location
}

func bucketRules(r Retention) []bucketRule {
	return []bucketRule{
		{"hourly", r.KeepHourly, func(t time.Time) string {
			// The zone offset keeps the two wall-clock hours of a daylight-saving fall-back
			// apart: 01:00-04:00 and 01:00-05:00 are different hours.
			return t.Format("2006-01-02T15:00Z07:00")
		}},
		{"daily", r.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", r.KeepWeekly, func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"monthly", r.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", r.KeepYearly, func(t time.Time) string { return t.Format("2006") }},
	}
}

// Apply decides, for each point, whether r keeps it at time now. Calendar buckets use
// loc (nil means UTC). The result has one Decision per point, newest first (ties broken
// by ID), and does not depend on the order of points. Apply removes nothing itself.
//
// Apply never removes a point under a policy with no rule at all (the zero Retention):
// every point is kept with the reason "no retention policy". Negative values count as
// zero; call Validate first to report them.
func Apply(points []Candidate, r Retention, now time.Time, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.UTC
	}
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := points[a], points[b]
		if c := pb.Time.Compare(pa.Time); c != 0 {
			return c // newest first
		}
		return strings.Compare(pa.ID, pb.ID)
	})

	out := make([]Decision, 0, len(points))
	if r.IsZero() {
		for _, i := range order {
			p := points[i]
			out = append(out, Decision{ID: p.ID, Time: p.Time, Keep: true, Reasons: []string{"no retention policy"}})
		}
		return out
	}

	rules := bucketRules(r)
	remaining := make([]int, len(rules))
	last := make([]string, len(rules))
	for i, b := range rules {
		remaining[i] = b.count
	}
	tags := parseKeepTags(r.KeepTags)
	keepRules := r.hasKeepRule()
	counted := 0 // points seen by the count rules (not dated in the future)

	for _, i := range order {
		p := points[i]
		d := Decision{ID: p.ID, Time: p.Time}
		if p.Time.After(now) {
			d.Keep = true
			d.Reasons = []string{"dated in the future; not counted by any rule"}
			out = append(out, d)
			continue
		}
		counted++
		age := now.Sub(p.Time)
		var reasons []string
		if counted <= r.KeepLast {
			reasons = append(reasons, fmt.Sprintf("last %d", counted))
		}
		local := p.Time.In(loc)
		for j, b := range rules {
			if remaining[j] <= 0 {
				continue
			}
			if k := b.key(local); k != last[j] {
				last[j] = k
				remaining[j]--
				reasons = append(reasons, b.name+" "+k)
			}
		}
		if r.KeepWithin > 0 && age <= r.KeepWithin {
			reasons = append(reasons, "within "+FormatDuration(r.KeepWithin))
		}
		for _, t := range tags {
			if t.match(p.Tags) {
				reasons = append(reasons, "tag "+t.raw)
			}
		}
		if !keepRules && r.DeleteAfter > 0 && age <= r.DeleteAfter {
			reasons = append(reasons, "within delete_after "+FormatDuration(r.DeleteAfter))
		}
		if counted == 1 && len(reasons) == 0 {
			reasons = append(reasons, "newest")
		}
		switch {
		case r.DeleteAfter > 0 && age > r.DeleteAfter:
			d.Keep = false
			d.Reasons = []string{"older than delete_after " + FormatDuration(r.DeleteAfter)}
		case len(reasons) > 0:
			d.Keep = true
			d.Reasons = reasons
		default:
			d.Keep = false
			d.Reasons = []string{"no keep rule matched"}
		}
		out = append(out, d)
	}
	return out
}

type keepTag struct {
	raw, key, value string
	anyValue        bool
}

func (t keepTag) match(tags map[string]string) bool {
	v, ok := tags[t.key]
	return ok && (t.anyValue || v == t.value)
}

func parseKeepTags(in []string) []keepTag {
	var out []keepTag
	for _, raw := range in {
		k, v, hasValue := strings.Cut(raw, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			continue // Validate reports it; matching nothing is the safe reading
		}
		out = append(out, keepTag{raw: raw, key: k, value: v, anyValue: !hasValue})
	}
	return out
}
