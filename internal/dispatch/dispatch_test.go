package dispatch_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

func TestNewRefusesBadRules(t *testing.T) {
	_, err := dispatch.New(dispatch.Options{})
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("New without a store: %v", err)
	}
	c := newClock()
	_, err = dispatch.New(dispatch.Options{Store: openStore(t, c), Rules: map[string]rules.RuleSpec{
		"ok":        webhookRule("http://127.0.0.1:1/", nil),
		"no-target": {Pattern: `{"source": ["x"]}`},
		"bad-url":   {Pattern: `{"source": ["x"]}`, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "ftp://x"}}}},
	}})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "2 rules do not compile") ||
		!strings.Contains(err.Error(), `"no-target"`) || !strings.Contains(err.Error(), `"bad-url"`) {
		t.Errorf("New with bad rules: %v", err)
	}
}

func TestDispatchMatching(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	rcv := newReceiver(t)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{
		"failed-webhook": webhookRule(rcv.URL, nil),
		"failed-incident": {
			Pattern: `{"source": ["rewind.backup"], "detail": {"state": ["FAILED"]}}`,
			Targets: []rules.TargetSpec{{Incident: &rules.IncidentSpec{Title: "Backup of <resource> failed", Severity: "high"}}},
		},
		"off": {Pattern: `{"source": ["rewind.backup"]}`, Disabled: true,
			Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: rcv.URL}}}},
	}, dispatch.Options{})

	failed := appendEvent(t, s, "FAILED")
	appendEvent(t, s, "COMPLETED")
	tick(t, d)

	all := deliveries(t, s, catalog.DeliveryFilter{})
	if len(all) != 2 {
		t.Fatalf("deliveries: %+v, want one per target of the two matching rules", all)
	}
	for _, dl := range all {
		if dl.EventID != failed.ID || dl.State != catalog.DeliveryDelivered || dl.Attempts != 1 || dl.Owner != "" {
			t.Errorf("delivery %+v, want DELIVERED for event %s after one attempt", dl, failed.ID)
		}
	}
	if rcv.count() != 1 || rcv.got[0].Get(rules.EventIDHeader) != failed.ID || rcv.got[0].Get(rules.RuleHeader) != "failed-webhook" {
		t.Fatalf("receiver got %d requests: %+v", rcv.count(), rcv.got)
	}
	var incs []*catalog.Incident
	var undispatched []*catalog.Event
	err := s.Tx(ctx, func(tx catalog.Tx) (err error) {
		if incs, err = tx.ListIncidents(ctx, catalog.IncidentFilter{}); err != nil {
			return err
		}
		undispatched, err = tx.ListEvents(ctx, catalog.EventFilter{Undispatched: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(incs) != 1 || incs[0].Title != "Backup of app-db failed" || incs[0].Severity != "high" || incs[0].EventID != failed.ID {
		t.Errorf("incidents: %+v", incs)
	}
	if len(undispatched) != 0 {
		t.Errorf("events left undispatched: %+v", undispatched)
	}
	// A second tick finds nothing new.
	tick(t, d)
	if n := len(deliveries(t, s, catalog.DeliveryFilter{})); n != 2 || rcv.count() != 1 {
		t.Errorf("after a second tick: %d deliveries, %d requests", n, rcv.count())
	}
}

func TestRetryBackoff(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	rcv := newReceiver(t)
	rcv.set(http.StatusServiceUnavailable)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{"r": webhookRule(rcv.URL, nil)}, dispatch.Options{})
	appendEvent(t, s, "FAILED")
	first := c.Now()

	tick(t, d)
	dl := only(t, deliveries(t, s, catalog.DeliveryFilter{}))
	// Full jitter with Rand 0.5: half of the first ceiling (RetryBase).
	if dl.State != catalog.DeliveryPending || dl.Attempts != 1 || !dl.NextAt.Equal(first.Add(rules.RetryBase/2)) ||
		dl.FirstAttemptAt == nil || !dl.FirstAttemptAt.Equal(first) || dl.Owner != "" || dl.LeaseUntil != nil ||
		!strings.Contains(dl.LastError, "503") {
		t.Fatalf("after one failure: %+v", dl)
	}

	// Not due yet: no attempt.
	tick(t, d)
	if rcv.count() != 1 {
		t.Fatalf("attempted before the backoff ended: %d requests", rcv.count())
	}

	c.Add(time.Second)
	tick(t, d)
	dl = only(t, deliveries(t, s, catalog.DeliveryFilter{}))
	second := first.Add(time.Second)
	if dl.Attempts != 2 || !dl.NextAt.Equal(second.Add(rules.RetryBase)) || !dl.FirstAttemptAt.Equal(first) {
		t.Fatalf("after two failures (ceiling 2s, jitter 0.5): %+v", dl)
	}

	rcv.set(http.StatusNoContent)
	c.Add(time.Second)
	tick(t, d)
	dl = only(t, deliveries(t, s, catalog.DeliveryFilter{}))
	if dl.State != catalog.DeliveryDelivered || dl.Attempts != 3 || dl.FinishedAt == nil || rcv.count() != 3 {
		t.Fatalf("after success: %+v (%d requests)", dl, rcv.count())
	}
}

func TestExpiredLeaseIsReclaimed(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	rcv := newReceiver(t)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{"r": webhookRule(rcv.URL, nil)}, dispatch.Options{Lease: time.Minute})
	appendEvent(t, s, "FAILED")
	if _, err := d.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	// A worker claims the delivery, then dies.
	err := s.Tx(ctx, func(tx catalog.Tx) error {
		got, err := tx.ClaimDeliveries(ctx, "dead-worker", tx.Now().Add(time.Minute), 10)
		if len(got) != 1 {
			t.Fatalf("claimed %d deliveries", len(got))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tick(t, d)
	if rcv.count() != 0 {
		t.Fatal("a leased delivery was attempted before its lease ran out")
	}
	c.Add(time.Minute + time.Second)
	tick(t, d)
	dl := only(t, deliveries(t, s, catalog.DeliveryFilter{}))
	if dl.State != catalog.DeliveryDelivered || rcv.count() != 1 || dl.Attempts != 1 {
		t.Fatalf("after the lease ran out: %+v (%d requests)", dl, rcv.count())
	}
	// The dead worker's late outcome is refused.
	err = s.Tx(ctx, func(tx catalog.Tx) error {
		_, err := tx.UpdateDelivery(ctx, dl.ID, catalog.DeliveryUpdate{IfOwner: catalog.Ptr("dead-worker"),
			State: catalog.Ptr(catalog.DeliveryDead)})
		return err
	})
	if !errs.Is(err, errs.Conflict) {
		t.Fatalf("late update by the former owner: %v, want a conflict", err)
	}
}

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name     string
		retry    *rules.RetrySpec
		status   int
		step     time.Duration // clock advance between ticks
		attempts int           // attempts until the dead letter
	}{
		{"max attempts", &rules.RetrySpec{MaxAttempts: catalog.Ptr(2)}, http.StatusBadGateway, 10 * time.Second, 3},
		{"max age", &rules.RetrySpec{MaxAge: rules.Duration(time.Minute)}, http.StatusServiceUnavailable, 40 * time.Second, 3},
		{"not retryable", nil, http.StatusBadRequest, time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := openStore(t, c)
			rcv := newReceiver(t)
			rcv.set(tt.status)
			d := newDispatcher(t, s, c, map[string]rules.RuleSpec{"r": webhookRule(rcv.URL, tt.retry)}, dispatch.Options{})
			appendEvent(t, s, "FAILED")
			var dl *catalog.Delivery
			for i := 1; i <= tt.attempts; i++ {
				tick(t, d)
				dl = only(t, deliveries(t, s, catalog.DeliveryFilter{}))
				if dl.Attempts != i {
					t.Fatalf("tick %d: %d attempts", i, dl.Attempts)
				}
				if want := i == tt.attempts; (dl.State == catalog.DeliveryDead) != want {
					t.Fatalf("tick %d: state %s", i, dl.State)
				}
				c.Add(tt.step)
			}
			if !strings.Contains(dl.LastError, http.StatusText(tt.status)) || dl.FinishedAt == nil {
				t.Errorf("dead letter: %+v", dl)
			}
			dead := deliveries(t, s, catalog.DeliveryFilter{State: catalog.Ptr(catalog.DeliveryDead)})
			if len(dead) != 1 {
				t.Errorf("dead letters: %+v", dead)
			}
			// A dead letter is not attempted again.
			c.Add(time.Hour)
			tick(t, d)
			if rcv.count() != tt.attempts {
				t.Errorf("%d requests, want %d", rcv.count(), tt.attempts)
			}
		})
	}
}

func TestRunbookTargetWithoutRunbooksIsDead(t *testing.T) {
	c := newClock()
	s := openStore(t, c)
	d := newDispatcher(t, s, c, map[string]rules.RuleSpec{"rb": {Pattern: `{"source": ["rewind.backup"]}`,
		Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "recover"}}}}}, dispatch.Options{})
	appendEvent(t, s, "FAILED")
	tick(t, d)
	dl := only(t, deliveries(t, s, catalog.DeliveryFilter{}))
	if dl.State != catalog.DeliveryDead || dl.LastError == "" {
		t.Fatalf("runbook delivery without runbooks: %+v", dl)
	}
}
