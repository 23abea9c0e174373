package dispatch_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

func putRule(t *testing.T, s catalog.Store, name string, spec any) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tx(ctx, func(tx catalog.Tx) error {
		return tx.PutEventRule(ctx, &catalog.EventRule{Name: name, Spec: b})
	}); err != nil {
		t.Fatal(err)
	}
}

func TestReloadAPIRules(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	cfgRcv, apiRcv := newReceiver(t), newReceiver(t)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{"from-config": webhookRule(cfgRcv.URL, nil)}, dispatch.Options{})

	changed, err := d.Reload(ctx)
	if err != nil || !changed {
		t.Fatalf("first Reload: %v %v", changed, err)
	}
	if changed, err := d.Reload(ctx); err != nil || changed {
		t.Fatalf("Reload without a change: %v %v", changed, err)
	}

	// A rule put through the API is in force at the next tick, without a new dispatcher.
	putRule(t, s, "from-api", webhookRule(apiRcv.URL, nil))
	// One named like the configuration's rule is ignored; one that does not compile is
	// left out without stopping the others.
	putRule(t, s, "from-config", webhookRule(apiRcv.URL, nil))
	putRule(t, s, "broken", map[string]any{"pattern": map[string]any{"source": []string{"x"}}})
	appendEvent(t, s, "FAILED")
	tick(t, d)
	if cfgRcv.count() != 1 || apiRcv.count() != 1 {
		t.Fatalf("after the put: config receiver %d, API receiver %d requests; want 1 and 1", cfgRcv.count(), apiRcv.count())
	}
	if got := d.RuleSource("from-api"); got != catalog.RuleSourceAPI {
		t.Errorf("source of from-api: %q", got)
	}
	if got := d.RuleSource("from-config"); got != catalog.RuleSourceConfig {
		t.Errorf("source of from-config: %q", got)
	}
	if got := d.RuleSource("broken"); got != "" {
		t.Errorf("a rule that does not compile is in force: %q", got)
	}
	if n := len(d.Rules()); n != 2 {
		t.Errorf("%d rules in force, want 2", n)
	}

	// A deleted rule receives no further events.
	if err := s.Tx(ctx, func(tx catalog.Tx) error { return tx.DeleteEventRule(ctx, "from-api") }); err != nil {
		t.Fatal(err)
	}
	appendEvent(t, s, "FAILED")
	tick(t, d)
	if cfgRcv.count() != 2 || apiRcv.count() != 1 {
		t.Fatalf("after the delete: config receiver %d, API receiver %d requests; want 2 and 1", cfgRcv.count(), apiRcv.count())
	}
	if got := d.RuleSource("from-api"); got != "" {
		t.Errorf("deleted rule still in force (%q)", got)
	}
}

// TestReplayAPIRule checks that a rule put a moment ago can be replayed at once.
func TestReplayAPIRule(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	d := newDispatcher(t, s, c, nil, dispatch.Options{})
	from := c.Now()
	appendEvent(t, s, "FAILED")
	tick(t, d)
	putRule(t, s, "late", webhookRule("http://127.0.0.1:1/", nil))
	c.Add(time.Second)
	res, err := d.Replay(ctx, dispatch.Replay{From: from, To: c.Now(), Rule: "late"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deliveries != 1 {
		t.Fatalf("replay: %+v", res)
	}
}

func TestDecodeRuleSpecKeepsNumbers(t *testing.T) {
	spec, err := dispatch.DecodeRuleSpec([]byte(`{"pattern": {"detail": {"n": [12345678901234567890]}}, "targets": []}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := spec.Pattern.(json.RawMessage)
	if !ok || string(raw) != `{"detail": {"n": [12345678901234567890]}}` {
		t.Fatalf("pattern: %#v", spec.Pattern)
	}
	if _, err := dispatch.DecodeRuleSpec([]byte(`[1]`)); err == nil {
		t.Error("an array decodes as a rule")
	}
}
