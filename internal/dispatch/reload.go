package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// Reload reads the catalog's rules when their revision changed since the last read (one
// small query otherwise) and puts the configuration's rules and the catalog's in force,
// for the events dispatched from then on. It reports whether the rules in force changed.
// A stored rule named like a configuration rule is ignored (the configuration wins), and
// a stored rule that no longer compiles is left out and logged: neither stops the other
// rules. Errors are the catalog's; the rules in force stay as they were then. Safe for
// concurrent use.
func (d *Dispatcher) Reload(ctx context.Context) (bool, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cur := d.cur.Load()
	var (
		rev    int64
		stored []*catalog.EventRule
		same   bool
	)
	err := d.o.Store.Tx(ctx, func(tx catalog.Tx) (err error) {
		if rev, err = tx.EventRulesRevision(ctx); err != nil {
			return err
		}
		if same = cur.loaded && rev == cur.revision; same {
			return nil
		}
		stored, err = tx.ListEventRules(ctx)
		return err
	})
	if err != nil || same {
		return false, err
	}
	next := &ruleSet{byName: map[string]*rules.Rule{}, source: map[string]string{}, revision: rev, loaded: true}
	for name, r := range d.config {
		next.byName[name], next.source[name] = r, catalog.RuleSourceConfig
	}
	for _, er := range stored {
		if _, ok := d.config[er.Name]; ok {
			d.o.Log.Warn("a rule stored through the API has the name of a configuration rule; the configuration's is used",
				"rule", er.Name)
			continue
		}
		spec, err := DecodeRuleSpec(er.Spec)
		if err == nil {
			var r *rules.Rule
			if r, err = rules.Compile(er.Name, spec); err == nil {
				next.byName[er.Name], next.source[er.Name] = r, catalog.RuleSourceAPI
				continue
			}
		}
		d.o.Log.Error("a rule stored through the API does not compile; it receives no events until it is put again",
			"rule", er.Name, "err", err)
	}
	list := make([]*rules.Rule, 0, len(next.byName))
	for _, r := range next.byName {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
	next.set = rules.NewSet(list)
	d.cur.Store(next)
	if cur.loaded {
		d.o.Log.Info("event rules reloaded", "revision", rev, "rules", len(list))
	}
	return true, nil
}

// DecodeRuleSpec decodes a rule stored as JSON (or sent to PUT /v1/rules/{name}) into the
// spec rules.Compile takes. The pattern is kept as the JSON text it was written in, so
// that numbers keep every digit. errs.Invalid when b is not a JSON object of a rule's
// shape; whether the rule is valid is Compile's business.
func DecodeRuleSpec(b []byte) (rules.RuleSpec, error) {
	const op = "dispatch.DecodeRuleSpec"
	var spec rules.RuleSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return rules.RuleSpec{}, errs.E(op, errs.Invalid, err)
	}
	var raw struct {
		Pattern json.RawMessage `json:"pattern"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return rules.RuleSpec{}, errs.E(op, errs.Invalid, err)
	}
	if p := bytes.TrimSpace(raw.Pattern); len(p) > 0 && p[0] == '{' {
		spec.Pattern = json.RawMessage(p)
	}
	return spec, nil
}
