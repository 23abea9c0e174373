// Package plan holds the pure rules behind Rewind's backup plans: which recovery points a
// retention policy keeps or removes (Apply), when a cron schedule fires (ParseSchedule,
// Schedule.Next, Schedule.Between), how long a scheduled job may wait to start or run
// (Window), and durations with day and week units (ParseDuration). It computes decisions
// only: it must not read configuration files, touch a vault or catalog, delete anything,
// or read the clock; callers pass "now" in and act on the decisions themselves.
package plan
