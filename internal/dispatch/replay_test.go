package dispatch_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

func TestReplay(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	rcv := newReceiver(t)
	other := newReceiver(t)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{
		"a": webhookRule(rcv.URL, nil),
		"b": webhookRule(other.URL, nil),
	}, dispatch.Options{Batch: 2}) // small pages: the replay crosses several
	start := c.Now()
	var inWindow []string
	for i := range 5 {
		e := appendEvent(t, s, "FAILED")
		if i < 3 {
			inWindow = append(inWindow, e.ID)
		}
		c.Add(time.Minute)
	}
	end := start.Add(3 * time.Minute) // the first three events
	tick(t, d)
	if rcv.count() != 5 || other.count() != 5 {
		t.Fatalf("live deliveries: %d and %d requests", rcv.count(), other.count())
	}

	res, err := d.Replay(ctx, dispatch.Replay{Name: "drill-1", From: start, To: end, Rule: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "drill-1" || res.Events != 3 || res.Deliveries != 3 {
		t.Fatalf("replay result: %+v", res)
	}
	replayed := deliveries(t, s, catalog.DeliveryFilter{Replay: catalog.Ptr("drill-1")})
	if len(replayed) != 3 {
		t.Fatalf("replayed deliveries: %+v", replayed)
	}
	for i, dl := range replayed {
		if dl.Rule != "a" || dl.EventID != inWindow[i] || dl.State != catalog.DeliveryPending {
			t.Errorf("replayed delivery %d: %+v", i, dl)
		}
	}
	tick(t, d)
	if rcv.count() != 8 || other.count() != 5 {
		t.Fatalf("after the replay: %d and %d requests, want 8 and 5", rcv.count(), other.count())
	}
	// The replayed event says it is one.
	var ev map[string]any
	if err := json.Unmarshal(rcv.bodies[7], &ev); err != nil {
		t.Fatal(err)
	}
	if ev[dispatch.ReplayNameField] != "drill-1" || ev["id"] != inWindow[2] {
		t.Errorf("replayed payload: %v", ev)
	}
	if live := rcv.bodies[0]; strings.Contains(string(live), dispatch.ReplayNameField) {
		t.Errorf("a live payload carries the replay name: %s", live)
	}

	// Without a rule or name, every rule gets the events again, under a generated name.
	res, err = d.Replay(ctx, dispatch.Replay{From: start, To: end})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Name, "replay-") || res.Events != 3 || res.Deliveries != 6 {
		t.Errorf("replay of every rule: %+v", res)
	}
}

func TestReplayRefuses(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{"a": webhookRule("http://127.0.0.1:1/", nil)}, dispatch.Options{})
	now := c.Now()
	tests := []struct {
		name string
		r    dispatch.Replay
		kind errs.Kind
	}{
		{"no window", dispatch.Replay{}, errs.Invalid},
		{"reversed", dispatch.Replay{From: now, To: now.Add(-time.Hour)}, errs.Invalid},
		{"empty", dispatch.Replay{From: now, To: now}, errs.Invalid},
		{"unknown rule", dispatch.Replay{From: now.Add(-time.Hour), To: now, Rule: "ghost"}, errs.NotFound},
		{"bad name", dispatch.Replay{From: now.Add(-time.Hour), To: now, Name: "no spaces"}, errs.Invalid},
		{"long name", dispatch.Replay{From: now.Add(-time.Hour), To: now, Name: strings.Repeat("x", 65)}, errs.Invalid},
	}
	for _, tt := range tests {
		_, err := d.Replay(ctx, tt.r)
		if !errs.Is(err, tt.kind) || errs.HintOf(err) == "" {
			t.Errorf("%s: %v (kind %v), want kind %v with a hint", tt.name, err, errs.KindOf(err), tt.kind)
		}
	}
	if n := len(deliveries(t, s, catalog.DeliveryFilter{})); n != 0 {
		t.Errorf("refused replays recorded %d deliveries", n)
	}
}

func TestPurge(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	d := newDispatcher(t, s, c, nil, dispatch.Options{Archive: time.Hour})
	oldDispatched := appendEvent(t, s, "FAILED")
	tick(t, d)
	c.Add(30 * time.Minute)
	recent := appendEvent(t, s, "FAILED")
	tick(t, d)
	c.Add(31 * time.Minute)
	// Old but never dispatched (the dispatcher was down): kept whatever its age.
	oldUndispatched := &catalog.Event{Source: "x", DetailType: "y", Time: c.Now().Add(-2 * time.Hour), Resources: []string{},
		Detail: json.RawMessage(`{}`)}
	if err := s.Tx(ctx, func(tx catalog.Tx) error { return tx.AppendEvent(ctx, oldUndispatched) }); err != nil {
		t.Fatal(err)
	}
	n, err := d.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("purged %d events, want 1", n)
	}
	var left []*catalog.Event
	if err := s.Tx(ctx, func(tx catalog.Tx) (err error) { left, err = tx.ListEvents(ctx, catalog.EventFilter{}); return }); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range left {
		ids[e.ID] = true
	}
	if ids[oldDispatched.ID] || !ids[recent.ID] || !ids[oldUndispatched.ID] || len(left) != 2 {
		t.Errorf("events left: %v", ids)
	}
}
