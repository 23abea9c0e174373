package catalog

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// RulesAlarmsTx is the part of Tx that keeps the event rules defined through the API
// (the configuration's rules are never stored: the server reads them from its file) and
// the last state each alarm announced, so that a restarted server continues from it. The
// errors every Tx method may return (errs.Unavailable, errs.Canceled, errs.Conflict on a
// deadlock) apply; the transaction stays usable after NotFound and Invalid.
type RulesAlarmsTx interface {
	// PutEventRule inserts or replaces the rule named r.Name after EventRule.Prepare
	// (CreatedAt is kept from the first insert, UpdatedAt is Now; r is updated in place)
	// and advances EventRulesRevision. errs.Invalid for a bad record. Concurrent puts of
	// one name serialize; the last to commit wins.
	PutEventRule(ctx context.Context, r *EventRule) error
	// GetEventRule returns one rule; errs.NotFound if there is none of that name.
	GetEventRule(ctx context.Context, name string) (*EventRule, error)
	// ListEventRules returns every stored rule, by name.
	ListEventRules(ctx context.Context) ([]*EventRule, error)
	// DeleteEventRule deletes a rule and advances EventRulesRevision. errs.NotFound if
	// there is none of that name (nothing changes then).
	DeleteEventRule(ctx context.Context, name string) error
	// EventRulesRevision returns a number that grows with every PutEventRule and
	// DeleteEventRule that committed: a reader that saw revision n and sees n again has
	// the current rules. It is 0 in a catalog where no rule was ever stored.
	EventRulesRevision(ctx context.Context) (int64, error)

	// PutAlarmState inserts or replaces the state of the alarm s.Name after
	// AlarmState.Prepare (UpdatedAt is Now). errs.Invalid for a bad record.
	PutAlarmState(ctx context.Context, s *AlarmState) error
	// ListAlarmStates returns every stored alarm state, by name; alarms the configuration
	// no longer has are listed too.
	ListAlarmStates(ctx context.Context) ([]*AlarmState, error)
}

// RuleSourceAPI and RuleSourceConfig say where an event rule comes from: stored in the
// catalog through the API, or read from the server's configuration file.
const (
	RuleSourceAPI    = "api"
	RuleSourceConfig = "config"
)

// EventRule is an event rule stored through the API. Spec is the rule as the rules
// engine reads it (a rules.RuleSpec as JSON: pattern, targets, …); the catalog checks
// only that it is a JSON object, the API compiles it before storing it.
type EventRule struct {
	Name      string          `json:"name"`
	Spec      json.RawMessage `json:"spec"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// MaxEventRuleSpec bounds a stored rule's spec.
const MaxEventRuleSpec = 64 << 10 // bytes

// Prepare validates a rule to store and stamps it: CreatedAt and UpdatedAt now (the store
// keeps the first CreatedAt). errs.Invalid for an empty or unprintable name, or a spec
// that is not a JSON object or is larger than MaxEventRuleSpec.
func (r *EventRule) Prepare(now time.Time) error {
	const op = "catalog.PutEventRule"
	if err := validName(op, "rule name", r.Name); err != nil {
		return err
	}
	if len(r.Spec) == 0 {
		return errs.Errorf(op, errs.Invalid, "rule %s has no spec", r.Name)
	}
	if len(r.Spec) > MaxEventRuleSpec {
		return errs.Errorf(op, errs.Invalid, "rule %s: its spec is %d bytes, more than %d", r.Name, len(r.Spec), MaxEventRuleSpec)
	}
	if err := validObject(op, "rule "+r.Name+" spec", r.Spec); err != nil {
		return err
	}
	r.CreatedAt, r.UpdatedAt = now, now
	return nil
}

// Alarm states as the catalog stores them (the alarm package's states).
var alarmStates = []string{"OK", "ALARM", "INSUFFICIENT_DATA"}

// AlarmState is the last state an alarm announced: its value, the reason of that
// transition and when it happened.
type AlarmState struct {
	Name      string    `json:"name"`
	State     string    `json:"state"` // OK, ALARM or INSUFFICIENT_DATA
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Prepare validates an alarm state to store and stamps UpdatedAt with now; Since is
// normalized to the microsecond in UTC. errs.Invalid for an empty name, an unknown state
// or a zero Since.
func (s *AlarmState) Prepare(now time.Time) error {
	const op = "catalog.PutAlarmState"
	if err := validName(op, "alarm name", s.Name); err != nil {
		return err
	}
	if !slices.Contains(alarmStates, s.State) {
		return errs.Errorf(op, errs.Invalid, "alarm %s: unknown state %q", s.Name, s.State).
			WithHint("use OK, ALARM or INSUFFICIENT_DATA")
	}
	if s.Since.IsZero() {
		return errs.Errorf(op, errs.Invalid, "alarm %s: the state has no time", s.Name)
	}
	s.Since = Micro(s.Since)
	s.UpdatedAt = now
	return nil
}
