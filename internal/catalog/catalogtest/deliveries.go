package catalogtest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// runDeliveries runs the tests of EventRulesTx: deliveries, incidents and the archive.
func runDeliveries(t *testing.T, open func(*testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, catalog.Store)
	}{
		{"DeliveryRoundTrip", testDeliveryRoundTrip},
		{"DeliveryInvalid", testDeliveryInvalid},
		{"ClaimDeliveries", testClaimDeliveries},
		{"ConcurrentClaimDeliveries", testConcurrentClaimDeliveries},
		{"DeliveryLifecycle", testDeliveryLifecycle},
		{"ListDeliveries", testListDeliveries},
		{"DeleteEventsBefore", testDeleteEventsBefore},
		{"Incidents", testIncidents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func newDelivery(event, rule string) *catalog.Delivery {
	return &catalog.Delivery{EventID: event, Rule: rule, Target: 0, Kind: "webhook",
		Spec: json.RawMessage(`{"rule":"` + rule + `","payload":"e30="}`)}
}

func testDeliveryRoundTrip(t *testing.T, s catalog.Store) {
	d := newDelivery("EV1", "failed-backups")
	d.Replay = "r1"
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateDeliveries(ctx, []*catalog.Delivery{d}); err != nil {
			return err
		}
		if d.ID == "" || d.State != catalog.DeliveryPending || !d.NextAt.Equal(tx.Now()) || !d.CreatedAt.Equal(tx.Now()) {
			t.Fatalf("defaults not filled: %+v", d)
		}
		return nil
	})
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetDelivery(ctx, d.ID)
		if err != nil {
			return err
		}
		same(t, "delivery", got, d)
		_, err = tx.GetDelivery(ctx, "nope")
		wantKind(t, "GetDelivery unknown", err, errs.NotFound)
		return nil
	})
}

func testDeliveryInvalid(t *testing.T, s catalog.Store) {
	tx(t, s, func(tx catalog.Tx) error {
		for what, bad := range map[string]*catalog.Delivery{
			"no event":     {Rule: "r", Kind: "webhook", Spec: json.RawMessage(`{}`)},
			"no rule":      {EventID: "e", Kind: "webhook", Spec: json.RawMessage(`{}`)},
			"no kind":      {EventID: "e", Rule: "r", Spec: json.RawMessage(`{}`)},
			"spec array":   {EventID: "e", Rule: "r", Kind: "webhook", Spec: json.RawMessage(`[]`)},
			"dead at once": {EventID: "e", Rule: "r", Kind: "webhook", Spec: json.RawMessage(`{}`), State: catalog.DeliveryDead},
			"negative":     {EventID: "e", Rule: "r", Kind: "webhook", Spec: json.RawMessage(`{}`), Target: -1},
		} {
			wantKind(t, "CreateDeliveries "+what, tx.CreateDeliveries(ctx, []*catalog.Delivery{bad}), errs.Invalid)
		}
		d := newDelivery("e", "r")
		if err := tx.CreateDeliveries(ctx, []*catalog.Delivery{d}); err != nil {
			return err
		}
		dup := newDelivery("e", "r")
		dup.ID = d.ID
		wantKind(t, "duplicate delivery", tx.CreateDeliveries(ctx, []*catalog.Delivery{dup}), errs.Exists)
		// The transaction is still usable, and the failed batch wrote nothing.
		all, err := tx.ListDeliveries(ctx, catalog.DeliveryFilter{})
		if err != nil {
			return err
		}
		if len(all) != 1 {
			t.Fatalf("after failed batches: %d deliveries, want 1", len(all))
		}
		_, err = tx.ClaimDeliveries(ctx, "", time.Now(), 1)
		wantKind(t, "claim without owner", err, errs.Invalid)
		_, err = tx.ListDeliveries(ctx, catalog.DeliveryFilter{State: catalog.Ptr(catalog.DeliveryState("LOST"))})
		wantKind(t, "list unknown state", err, errs.Invalid)
		return nil
	})
}

func testClaimDeliveries(t *testing.T, s catalog.Store) {
	due := newDelivery("e1", "r")
	later := newDelivery("e2", "r")
	later.NextAt = time.Now().Add(time.Hour)
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateDeliveries(ctx, []*catalog.Delivery{due, later}) })
	var lease time.Time
	tx(t, s, func(tx catalog.Tx) error {
		lease = tx.Now().Add(time.Minute)
		got, err := tx.ClaimDeliveries(ctx, "srv-a", lease, 10)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].ID != due.ID || got[0].Owner != "srv-a" || !got[0].LeaseUntil.Equal(catalog.Micro(lease)) {
			t.Fatalf("claim: got %+v, want only %s owned by srv-a", got, due.ID)
		}
		return nil
	})
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.ClaimDeliveries(ctx, "srv-b", tx.Now().Add(time.Minute), 10)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			t.Fatalf("a leased delivery was claimed again: %+v", got)
		}
		// The owner gives it back (a retry later): it is due again for anyone.
		_, err = tx.UpdateDelivery(ctx, due.ID, catalog.DeliveryUpdate{IfOwner: catalog.Ptr("srv-a"),
			Attempts: catalog.Ptr(1), NextAt: catalog.Ptr(tx.Now()), ClearLease: true})
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.ClaimDeliveries(ctx, "srv-b", tx.Now().Add(time.Minute), 10)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Attempts != 1 || got[0].Owner != "srv-b" {
			t.Fatalf("claim after release: %+v", got)
		}
		return nil
	})
	// An expired lease is taken over.
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.UpdateDelivery(ctx, due.ID, catalog.DeliveryUpdate{ClearLease: true})
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.ClaimDeliveries(ctx, "srv-c", tx.Now().Add(-time.Second), 1)
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.ClaimDeliveries(ctx, "srv-d", tx.Now().Add(time.Minute), 1)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Owner != "srv-d" {
			t.Fatalf("expired lease not taken over: %+v", got)
		}
		return nil
	})
}

func testConcurrentClaimDeliveries(t *testing.T, s catalog.Store) {
	var ds []*catalog.Delivery
	for range 20 {
		ds = append(ds, newDelivery("e", "r"))
	}
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateDeliveries(ctx, ds) })
	var mu sync.Mutex
	owners := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := string(rune('a' + w))
			for range 10 {
				var got []*catalog.Delivery
				err := s.Tx(ctx, func(tx catalog.Tx) (err error) {
					got, err = tx.ClaimDeliveries(ctx, owner, tx.Now().Add(time.Hour), 3)
					return err
				})
				if errs.Is(err, errs.Conflict) {
					continue // a serialization failure: try again
				}
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				mu.Lock()
				for _, d := range got {
					if prev, ok := owners[d.ID]; ok {
						t.Errorf("delivery %s claimed by %s and %s", d.ID, prev, owner)
					}
					owners[d.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owners) != len(ds) {
		t.Fatalf("%d of %d deliveries claimed", len(owners), len(ds))
	}
}

func testDeliveryLifecycle(t *testing.T, s catalog.Store) {
	ok, dead := newDelivery("e", "r"), newDelivery("e", "r")
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateDeliveries(ctx, []*catalog.Delivery{ok, dead}) })
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.ClaimDeliveries(ctx, "w", tx.Now().Add(time.Hour), 2)
		return err
	})
	tx(t, s, func(tx catalog.Tx) error {
		first := tx.Now()
		_, err := tx.UpdateDelivery(ctx, ok.ID, catalog.DeliveryUpdate{IfOwner: catalog.Ptr("other"), State: catalog.Ptr(catalog.DeliveryDelivered)})
		wantKind(t, "update by another owner", err, errs.Conflict)
		_, err = tx.UpdateDelivery(ctx, ok.ID, catalog.DeliveryUpdate{State: catalog.Ptr(catalog.DeliveryPending)})
		if err != nil {
			return err // PENDING to PENDING changes nothing
		}
		_, err = tx.UpdateDelivery(ctx, ok.ID, catalog.DeliveryUpdate{State: catalog.Ptr(catalog.DeliveryState("GONE"))})
		wantKind(t, "unknown state", err, errs.Invalid)
		_, err = tx.UpdateDelivery(ctx, "nope", catalog.DeliveryUpdate{})
		wantKind(t, "unknown delivery", err, errs.NotFound)
		got, err := tx.UpdateDelivery(ctx, ok.ID, catalog.DeliveryUpdate{IfOwner: catalog.Ptr("w"),
			State: catalog.Ptr(catalog.DeliveryDelivered), Attempts: catalog.Ptr(1), FirstAttemptAt: &first})
		if err != nil {
			return err
		}
		if got.State != catalog.DeliveryDelivered || got.FinishedAt == nil || got.Owner != "" || got.LeaseUntil != nil {
			t.Fatalf("delivered: %+v", got)
		}
		got, err = tx.UpdateDelivery(ctx, dead.ID, catalog.DeliveryUpdate{State: catalog.Ptr(catalog.DeliveryDead),
			Attempts: catalog.Ptr(3), LastError: catalog.Ptr("POST http://x: 500")})
		if err != nil {
			return err
		}
		if got.State != catalog.DeliveryDead || got.LastError == "" {
			t.Fatalf("dead: %+v", got)
		}
		_, err = tx.UpdateDelivery(ctx, dead.ID, catalog.DeliveryUpdate{Attempts: catalog.Ptr(4)})
		wantKind(t, "update of a dead letter", err, errs.Conflict)
		return nil
	})
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetDelivery(ctx, dead.ID)
		if err != nil {
			return err
		}
		if got.State != catalog.DeliveryDead || got.Attempts != 3 || got.LastError != "POST http://x: 500" {
			t.Fatalf("dead letter as stored: %+v", got)
		}
		return nil
	})
}

func testListDeliveries(t *testing.T, s catalog.Store) {
	a, b, c := newDelivery("e1", "r1"), newDelivery("e2", "r2"), newDelivery("e1", "r2")
	c.Replay = "again"
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateDeliveries(ctx, []*catalog.Delivery{a, b, c}) })
	tx(t, s, func(tx catalog.Tx) error {
		_, err := tx.UpdateDelivery(ctx, b.ID, catalog.DeliveryUpdate{State: catalog.Ptr(catalog.DeliveryDead)})
		return err
	})
	ids := func(ds []*catalog.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    catalog.DeliveryFilter
		want []string
	}{
		{"all", catalog.DeliveryFilter{}, []string{a.ID, b.ID, c.ID}},
		{"dead", catalog.DeliveryFilter{State: catalog.Ptr(catalog.DeliveryDead)}, []string{b.ID}},
		{"rule", catalog.DeliveryFilter{Rule: catalog.Ptr("r2")}, []string{b.ID, c.ID}},
		{"event", catalog.DeliveryFilter{EventID: catalog.Ptr("e1")}, []string{a.ID, c.ID}},
		{"replay", catalog.DeliveryFilter{Replay: catalog.Ptr("again")}, []string{c.ID}},
		{"newest page", catalog.DeliveryFilter{Newest: true, Limit: 2}, []string{c.ID, b.ID}},
		{"after", catalog.DeliveryFilter{After: a.ID}, []string{b.ID, c.ID}},
	} {
		tx(t, s, func(tx catalog.Tx) error {
			got, err := tx.ListDeliveries(ctx, tc.f)
			if err != nil {
				return err
			}
			same(t, tc.name, ids(got), tc.want)
			return nil
		})
	}
}

func testDeleteEventsBefore(t *testing.T, s catalog.Store) {
	old := &catalog.Event{Source: "x", DetailType: "Old", Time: ts("2020-01-01T00:00:00Z"), Detail: json.RawMessage(`{}`)}
	oldPending := &catalog.Event{Source: "x", DetailType: "Old but pending", Time: ts("2020-01-02T00:00:00Z"), Detail: json.RawMessage(`{}`)}
	recent := &catalog.Event{Source: "x", DetailType: "Recent", Time: ts("2030-01-01T00:00:00Z"), Detail: json.RawMessage(`{}`)}
	tx(t, s, func(tx catalog.Tx) error {
		for _, e := range []*catalog.Event{old, oldPending, recent} {
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return tx.MarkDispatched(ctx, []string{old.ID, recent.ID})
	})
	tx(t, s, func(tx catalog.Tx) error {
		n, err := tx.DeleteEventsBefore(ctx, ts("2025-01-01T00:00:00Z"))
		if err != nil {
			return err
		}
		if n != 1 {
			t.Fatalf("deleted %d events, want 1 (the old dispatched one)", n)
		}
		left, err := tx.ListEvents(ctx, catalog.EventFilter{})
		if err != nil {
			return err
		}
		if len(left) != 2 || left[0].ID == old.ID || left[1].ID == old.ID {
			t.Fatalf("left: %+v", left)
		}
		return nil
	})
}

func testIncidents(t *testing.T, s catalog.Store) {
	inc := &catalog.Incident{ID: "D1", Title: "backup of db failed", Severity: "high", Rule: "failed-backups",
		EventID: "EV1", Event: json.RawMessage(`{"source":"rewind.backup"}`)}
	tx(t, s, func(tx catalog.Tx) error {
		if err := tx.CreateIncident(ctx, inc); err != nil {
			return err
		}
		if inc.Status != catalog.IncidentOpen || !inc.OpenedAt.Equal(tx.Now()) {
			t.Fatalf("defaults: %+v", inc)
		}
		dup := *inc
		dup.Status = ""
		wantKind(t, "duplicate incident", tx.CreateIncident(ctx, &dup), errs.Exists)
		for what, bad := range map[string]*catalog.Incident{
			"no title":     {Severity: "low", Rule: "r", EventID: "e", Event: json.RawMessage(`{}`)},
			"bad severity": {Title: "t", Severity: "urgent", Rule: "r", EventID: "e", Event: json.RawMessage(`{}`)},
			"no event":     {Title: "t", Severity: "low", Rule: "r", EventID: "e"},
		} {
			wantKind(t, "CreateIncident "+what, tx.CreateIncident(ctx, bad), errs.Invalid)
		}
		return nil
	})
	other := &catalog.Incident{Title: "second", Severity: "low", Rule: "r", EventID: "EV2", Event: json.RawMessage(`{}`)}
	tx(t, s, func(tx catalog.Tx) error { return tx.CreateIncident(ctx, other) })
	tx(t, s, func(tx catalog.Tx) error {
		got, err := tx.CloseIncident(ctx, inc.ID)
		if err != nil {
			return err
		}
		if got.Status != catalog.IncidentClosed || got.ClosedAt == nil || !got.ClosedAt.Equal(tx.Now()) {
			t.Fatalf("closed: %+v", got)
		}
		_, err = tx.CloseIncident(ctx, inc.ID)
		wantKind(t, "close twice", err, errs.Conflict)
		_, err = tx.CloseIncident(ctx, "nope")
		wantKind(t, "close unknown", err, errs.NotFound)
		open, err := tx.ListIncidents(ctx, catalog.IncidentFilter{Status: catalog.Ptr(catalog.IncidentOpen)})
		if err != nil {
			return err
		}
		if len(open) != 1 || open[0].ID != other.ID {
			t.Fatalf("open incidents: %+v", open)
		}
		stored, err := tx.GetIncident(ctx, inc.ID)
		if err != nil {
			return err
		}
		same(t, "closed incident", stored, got)
		all, err := tx.ListIncidents(ctx, catalog.IncidentFilter{})
		if err != nil {
			return err
		}
		if len(all) != 2 {
			t.Fatalf("all incidents: %d, want 2", len(all))
		}
		return nil
	})
}
