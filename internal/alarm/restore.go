package alarm

import (
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Restore sets alarms' states, reasons and times to what a previous run announced, so that
// the next Evaluate reports only transitions from there: a restarted server does not
// announce again a state it announced before it stopped. Statuses naming an alarm the
// evaluator does not hold (removed from the configuration) are ignored, and alarms not
// named keep INSUFFICIENT_DATA. errs.Invalid, naming the alarm, for an unknown state or a
// zero Since; nothing is restored then. Safe for concurrent use; meant for before the
// first Evaluate.
func (e *Evaluator) Restore(states []Status) error {
	for _, s := range states {
		switch {
		case s.State != StateOK && s.State != StateAlarm && s.State != StateInsufficient:
			return errs.Errorf("alarm.Restore", errs.Invalid, "alarm %s: unknown state %q", s.Name, s.State)
		case s.Since.IsZero():
			return errs.Errorf("alarm.Restore", errs.Invalid, "alarm %s: the state has no time", s.Name)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range states {
		a := e.byName[s.Name]
		if a == nil {
			continue
		}
		a.state, a.reason, a.since, a.reasonData = s.State, s.Reason, s.Since.In(time.UTC), nil
	}
	return nil
}
