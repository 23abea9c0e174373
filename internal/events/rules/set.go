package rules

import (
	"encoding/json"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/pattern"
)

const opMatch = "rules.Match"

// Delivery is one target to invoke for one event: plain data, so that a durable queue
// can store it as JSON and a Deliverer can execute it later even if the rules changed.
type Delivery struct {
	Rule        string          `json:"rule"`
	TargetIndex int             `json:"target_index"`
	Target      TargetSpec      `json:"target"`          // with defaults filled in
	EventID     string          `json:"event_id"`        // the envelope's id
	Event       json.RawMessage `json:"event"`           // the whole event
	Payload     []byte          `json:"payload"`         // transformed input (JSON or text), or the whole event
	Args        []string        `json:"args,omitempty"`  // exec: the command with JSONPaths replaced
	Title       string          `json:"title,omitempty"` // incident: the title with placeholders filled
	Retry       RetryPolicy     `json:"retry"`           // the target's resolved retry policy
}

// Set is a group of compiled rules that events are matched against. It is immutable and
// safe for concurrent use; to change the rules, build a new Set.
type Set struct {
	rules  map[string]*Rule
	order  []string
	byName *pattern.Set
}

// NewSet builds a Set from rules. Disabled and nil rules are left out; a later rule with
// the same name as an earlier one replaces it.
func NewSet(rules []*Rule) *Set {
	s := &Set{rules: make(map[string]*Rule, len(rules)), byName: pattern.NewSet()}
	for _, r := range rules {
		if r == nil || r.disabled {
			continue
		}
		if _, ok := s.rules[r.name]; !ok {
			s.order = append(s.order, r.name)
		}
		s.rules[r.name] = r
		s.byName.Add(r.name, r.pattern)
	}
	return s
}

// Len returns the number of enabled rules in the set.
func (s *Set) Len() int { return len(s.rules) }

// Match matches env against every rule and returns one Delivery per target of every
// matching rule, in the order the rules were given and their targets listed, with the
// ingestion time set to now. The error (errs.Invalid) is non-nil only when env's detail
// is not a JSON object.
func (s *Set) Match(env Envelope) ([]Delivery, error) {
	return s.MatchAt(env, time.Now())
}

// MatchAt is Match with the ingestion time given (<aws.events.event.ingestion-time>).
func (s *Set) MatchAt(env Envelope, ingestion time.Time) ([]Delivery, error) {
	event, err := json.Marshal(env)
	if err != nil {
		return nil, errs.E(opMatch, errs.Invalid, err)
	}
	v, err := decodeJSON(event)
	if err != nil {
		return nil, errs.Errorf(opMatch, errs.Internal, "event %s does not decode: %v", env.ID, err)
	}
	doc, _ := v.(map[string]any)
	names := s.byName.MatchAllValue(doc)
	var out []Delivery
	for _, name := range names {
		r := s.rules[name]
		sc := &scope{doc: doc, rule: r.name, ingestion: ingestion}
		for i := range r.targets {
			out = append(out, r.targets[i].delivery(r.name, i, env.ID, event, sc))
		}
	}
	return out, nil
}

func (t *target) delivery(rule string, i int, id string, event []byte, sc *scope) Delivery {
	d := Delivery{
		Rule:        rule,
		TargetIndex: i,
		Target:      t.spec,
		EventID:     id,
		Event:       event,
		Payload:     event,
		Retry:       t.retry,
	}
	if t.tr != nil {
		d.Payload = t.tr.apply(sc)
	}
	if t.spec.Exec != nil {
		d.Args = make([]string, 0, len(t.spec.Exec.Command))
		d.Args = append(d.Args, t.spec.Exec.Command[0])
		for _, a := range t.args {
			if a.path == nil {
				d.Args = append(d.Args, a.lit)
				continue
			}
			d.Args = append(d.Args, textValue(a.path.eval(sc.doc)))
		}
	}
	if t.title != nil {
		d.Title = string(t.title.render(func(name string) (any, bool) { return sc.titleValue(t.tr, name) }))
	}
	return d
}
