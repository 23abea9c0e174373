package dispatch_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/dispatch"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

var ctx = context.Background()

// clock is a settable time shared by the catalog and the dispatcher.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openStore opens a fresh SQLite catalog on the clock.
func openStore(t *testing.T, c *clock) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// receiver is a webhook endpoint answering with a settable status.
type receiver struct {
	mu     sync.Mutex
	status int
	got    []http.Header
	bodies [][]byte
	URL    string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req.Header.Clone())
		r.bodies = append(r.bodies, b)
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *receiver) set(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// webhookRule is a rule sending failed backups to url.
func webhookRule(url string, retry *rules.RetrySpec) rules.RuleSpec {
	return rules.RuleSpec{
		Pattern: `{"source": ["rewind.backup"], "detail": {"state": ["FAILED"]}}`,
		Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: url}}},
		Retry:   retry,
	}
}

func newDispatcher(t *testing.T, s catalog.Store, c *clock, specs map[string]rules.RuleSpec, o dispatch.Options) *dispatch.Dispatcher {
	t.Helper()
	o.Store, o.Rules, o.Now = s, specs, c.Now
	o.Owner = "test-worker"
	if o.Rand == nil {
		o.Rand = func() float64 { return 0.5 }
	}
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := dispatch.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// appendEvent writes a backup job event with the given state into the outbox.
func appendEvent(t *testing.T, s catalog.Store, state string) *catalog.Event {
	t.Helper()
	detail, _ := json.Marshal(map[string]string{"state": state, "jobId": "J1"})
	e := &catalog.Event{Source: catalog.EventSource, DetailType: catalog.DetailBackupJob, Resources: []string{"app-db"},
		Detail: detail}
	if err := s.Tx(ctx, func(tx catalog.Tx) error { return tx.AppendEvent(ctx, e) }); err != nil {
		t.Fatal(err)
	}
	return e
}

func deliveries(t *testing.T, s catalog.Store, f catalog.DeliveryFilter) []*catalog.Delivery {
	t.Helper()
	var out []*catalog.Delivery
	if err := s.Tx(ctx, func(tx catalog.Tx) (err error) { out, err = tx.ListDeliveries(ctx, f); return }); err != nil {
		t.Fatal(err)
	}
	return out
}

func tick(t *testing.T, d *dispatch.Dispatcher) {
	t.Helper()
	if err := d.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

func only(t *testing.T, ds []*catalog.Delivery) *catalog.Delivery {
	t.Helper()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(ds), ds)
	}
	return ds[0]
}
