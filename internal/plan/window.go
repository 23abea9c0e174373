package plan

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Window bounds a scheduled job, as AWS Backup's start and completion windows do.
//
// Start is how long after its scheduled time a job may still begin; a job not started by
// then is expired and must not run (the next scheduled run takes over). Completion is how
// long a job may run, measured from when it actually started; a job still running after
// that is expired and should be canceled. Zero means no limit.
type Window struct {
	Start      time.Duration
	Completion time.Duration
}

// Validate reports negative windows as errs.Invalid.
func (w Window) Validate() error {
	var problems []string
	if w.Start < 0 {
		problems = append(problems, fmt.Sprintf("start_window is %s; it cannot be negative", w.Start))
	}
	if w.Completion < 0 {
		problems = append(problems, fmt.Sprintf("completion_window is %s; it cannot be negative", w.Completion))
	}
	if len(problems) > 0 {
		return errs.E("plan.Window.Validate", errs.Invalid, errors.New(strings.Join(problems, "; "))).
			WithHint("use 0 for no limit or a duration like 1h")
	}
	return nil
}

// StartDeadline returns the last moment a job scheduled at scheduled may start, and false
// if there is no limit.
func (w Window) StartDeadline(scheduled time.Time) (time.Time, bool) {
	if w.Start <= 0 {
		return time.Time{}, false
	}
	return scheduled.Add(w.Start), true
}

// CompletionDeadline returns the moment a job started at started must be done by, and
// false if there is no limit.
func (w Window) CompletionDeadline(started time.Time) (time.Time, bool) {
	if w.Completion <= 0 {
		return time.Time{}, false
	}
	return started.Add(w.Completion), true
}

// StartExpired reports whether, at now, a job scheduled at scheduled that has not started
// yet is too late to start. At the deadline itself the job may still start.
func (w Window) StartExpired(scheduled, now time.Time) bool {
	d, ok := w.StartDeadline(scheduled)
	return ok && now.After(d)
}

// CompletionExpired reports whether, at now, a job started at started and still running
// has overrun its completion window.
func (w Window) CompletionExpired(started, now time.Time) bool {
	d, ok := w.CompletionDeadline(started)
	return ok && now.After(d)
}
