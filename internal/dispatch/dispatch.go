package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// Defaults of Options' zero fields.
const (
	DefaultArchive     = 30 * 24 * time.Hour // how long events stay in the outbox
	DefaultPoll        = time.Second         // how often Run looks for events and due deliveries
	DefaultBatch       = 64                  // events or deliveries per transaction
	DefaultConcurrency = 8                   // deliveries attempted at once
	// DefaultLease is how long a claimed delivery stays with its worker: longer than the
	// longest target timeout, so that only a worker that died loses its deliveries.
	DefaultLease = rules.MaxTargetTimeout + time.Minute
	// PurgeEvery is how often Run prunes the archive.
	PurgeEvery = time.Hour
)

// Options configures a Dispatcher. Store is required.
type Options struct {
	Store catalog.Store
	// Rules are the event rules by name, as the configuration gives them; New compiles them.
	// The rules stored in the catalog through the API are added at every Tick when the
	// catalog's rules changed (see Reload); a stored rule never replaces one of these.
	Rules map[string]rules.RuleSpec
	// Archive is how long dispatched events are kept for replay (DefaultArchive when zero).
	Archive time.Duration
	// Owner names this worker in the catalog's delivery leases (host and process when empty).
	Owner string
	// Client sends webhooks (nil: one that does not follow redirects).
	Client *http.Client
	// Secrets reads webhook secret files (rules.FileSecrets when nil).
	Secrets     rules.SecretLoader
	Now         func() time.Time // time.Now when nil
	Rand        func() float64   // the retry jitter's source; math/rand/v2 when nil
	Log         *slog.Logger     // slog.Default() when nil
	Poll        time.Duration
	Batch       int
	Concurrency int
	Lease       time.Duration
}

// Dispatcher routes the outbox's events through the rules to durable deliveries and works
// the deliveries off. It is safe for concurrent use; Run owns its background loop.
type Dispatcher struct {
	o        Options
	config   map[string]*rules.Rule // the configuration's rules, compiled
	cur      atomic.Pointer[ruleSet]
	reloadMu sync.Mutex // one Reload at a time
	runbooks atomic.Pointer[runbookHook]
}

// ruleSet is the rules in force: the configuration's and the catalog's at revision.
type ruleSet struct {
	set      *rules.Set
	byName   map[string]*rules.Rule
	source   map[string]string // catalog.RuleSourceConfig or catalog.RuleSourceAPI
	revision int64
	loaded   bool // the catalog's rules were read
}

type runbookHook struct{ rules.RunbookStarter }

// New compiles the rules and returns a dispatcher. errs.Invalid for a rule that does not
// compile (every problem is named) or a missing Store.
func New(o Options) (*Dispatcher, error) {
	const op = "dispatch.New"
	if o.Store == nil {
		return nil, errs.Errorf(op, errs.Invalid, "a catalog store is required")
	}
	if o.Archive <= 0 {
		o.Archive = DefaultArchive
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if o.Secrets == nil {
		o.Secrets = rules.FileSecrets{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	d := &Dispatcher{o: o, config: map[string]*rules.Rule{}}
	names := make([]string, 0, len(o.Rules))
	for name := range o.Rules {
		names = append(names, name)
	}
	sort.Strings(names)
	var compiled []*rules.Rule
	var problems []error
	for _, name := range names {
		r, err := rules.Compile(name, o.Rules[name])
		if err != nil {
			problems = append(problems, err)
			continue
		}
		compiled = append(compiled, r)
		d.config[name] = r
	}
	if len(problems) > 0 {
		return nil, errs.E(op, errs.Invalid, joinErrors(problems)).WithHint("fix the rules in the configuration")
	}
	src := make(map[string]string, len(compiled))
	byName := make(map[string]*rules.Rule, len(compiled))
	for _, r := range compiled {
		src[r.Name()], byName[r.Name()] = catalog.RuleSourceConfig, r
	}
	d.cur.Store(&ruleSet{set: rules.NewSet(compiled), byName: byName, source: src})
	return d, nil
}

// SetRunbooks sets what starts runbooks for runbook targets. Until it is set, a runbook
// delivery is a dead letter that says the server runs no runbooks. Safe to call while Run
// runs.
func (d *Dispatcher) SetRunbooks(r rules.RunbookStarter) {
	if r == nil {
		d.runbooks.Store(nil)
		return
	}
	d.runbooks.Store(&runbookHook{r})
}

// Rules lists the rules in force by name: the configuration's and, once a Tick or Reload
// read them, the catalog's.
func (d *Dispatcher) Rules() []*rules.Rule {
	cur := d.cur.Load()
	out := make([]*rules.Rule, 0, len(cur.byName))
	for _, r := range cur.byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// RuleSource says where the rule in force called name comes from: catalog.RuleSourceConfig,
// catalog.RuleSourceAPI, or "" when no rule of that name is in force.
func (d *Dispatcher) RuleSource(name string) string { return d.cur.Load().source[name] }

// Run dispatches, delivers and prunes every Poll until ctx ends; it returns once the
// deliveries under way finished or were canceled. Failures are logged and tried again at
// the next poll: they are transient (the catalog is unreachable) or already recorded on
// the delivery.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.o.Poll)
	defer t.Stop()
	var lastPurge time.Time
	for {
		if err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.o.Log.Error("event dispatch", "err", err)
		}
		if now := d.o.Now(); now.Sub(lastPurge) >= PurgeEvery {
			lastPurge = now
			if n, err := d.Purge(ctx); err != nil && ctx.Err() == nil {
				d.o.Log.Error("pruning the event archive", "err", err)
			} else if n > 0 {
				d.o.Log.Info("pruned the event archive", "events", n, "older_than", d.o.Archive)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick reloads the rules when the catalog's changed, dispatches every undispatched event,
// then attempts every due delivery once: the synchronous form of one poll of Run, for
// tests.
func (d *Dispatcher) Tick(ctx context.Context) error {
	if _, err := d.Reload(ctx); err != nil {
		return err
	}
	for {
		n, err := d.Dispatch(ctx)
		if err != nil {
			return err
		}
		if n < d.o.Batch {
			break
		}
	}
	for {
		n, err := d.Deliver(ctx)
		if err != nil {
			return err
		}
		if n < d.o.Batch {
			return nil
		}
	}
}

// envelope turns an outbox event into the envelope rules match.
func envelope(e *catalog.Event) rules.Envelope {
	return rules.Envelope{Version: e.Version, ID: e.ID, Source: e.Source, DetailType: e.DetailType, Time: e.Time,
		Site: e.Site, Resources: e.Resources, Detail: e.Detail}
}

// Dispatch takes up to Batch undispatched events, records a delivery for every rule target
// they match and marks them dispatched, all in one transaction: a crash leaves either both
// or neither. It returns how many events it dispatched. Errors are the catalog's.
func (d *Dispatcher) Dispatch(ctx context.Context) (int, error) {
	var n int
	set := d.cur.Load().set
	err := d.o.Store.Tx(ctx, func(tx catalog.Tx) error {
		evs, err := tx.ListEvents(ctx, catalog.EventFilter{Undispatched: true, Limit: d.o.Batch})
		if err != nil {
			return err
		}
		var ds []*catalog.Delivery
		ids := make([]string, 0, len(evs))
		for _, e := range evs {
			ids = append(ids, e.ID)
			matched, err := set.MatchAt(envelope(e), tx.Now())
			if err != nil {
				// The catalog validated the detail when it stored the event; an event that
				// still cannot be matched can never be, so it is dispatched to nothing.
				d.o.Log.Error("event cannot be matched; no rule receives it", "event", e.ID, "err", err)
				continue
			}
			for _, m := range matched {
				cd, err := record(m, "")
				if err != nil {
					return err
				}
				ds = append(ds, cd)
			}
		}
		if err := tx.CreateDeliveries(ctx, ds); err != nil {
			return err
		}
		n = len(evs)
		return tx.MarkDispatched(ctx, ids)
	})
	return n, err
}

// record turns a matched delivery into its catalog record.
func record(m rules.Delivery, replay string) (*catalog.Delivery, error) {
	spec, err := json.Marshal(m)
	if err != nil {
		return nil, errs.E("dispatch.record", errs.Internal, err)
	}
	return &catalog.Delivery{EventID: m.EventID, Rule: m.Rule, Target: m.TargetIndex, Kind: m.Target.Kind(),
		Replay: replay, Spec: spec}, nil
}

// Deliver claims up to Batch due deliveries, attempts each once (Concurrency at a time)
// and records the outcome: delivered, due again after a backoff, or a dead letter. It
// returns how many it attempted. Errors are the catalog's; a target's failure is recorded
// on its delivery, not returned.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	var claimed []*catalog.Delivery
	err := d.o.Store.Tx(ctx, func(tx catalog.Tx) (err error) {
		claimed, err = tx.ClaimDeliveries(ctx, d.o.Owner, tx.Now().Add(d.o.Lease), d.o.Batch)
		return err
	})
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Concurrency)
	for _, cd := range claimed {
		g.Go(func() error { return d.attempt(gctx, cd) })
	}
	return len(claimed), g.Wait()
}

// attempt runs one delivery once and records what happened.
func (d *Dispatcher) attempt(ctx context.Context, cd *catalog.Delivery) error {
	var m rules.Delivery
	now := d.o.Now()
	var derr error
	if err := json.Unmarshal(cd.Spec, &m); err != nil {
		derr = errs.Errorf("dispatch.Deliver", errs.Corrupt, "delivery %s: its stored spec does not decode: %v", cd.ID, err)
	} else if m.Target.Incident == nil {
		dl := rules.Deliverer{Client: d.o.Client, Now: d.o.Now}
		if h := d.runbooks.Load(); h != nil {
			dl.Runbooks = h.RunbookStarter
		}
		derr = dl.Deliver(ctx, m, d.o.Secrets)
	}
	if ctx.Err() != nil && derr != nil {
		// Shutting down: the attempt does not count. The lease is cleared so that the next
		// start (or another server) tries again at once.
		wctx := context.WithoutCancel(ctx)
		return d.o.Store.Tx(wctx, func(tx catalog.Tx) error {
			_, err := tx.UpdateDelivery(wctx, cd.ID, catalog.DeliveryUpdate{IfOwner: &d.o.Owner, ClearLease: true})
			return ignoreConflict(err)
		})
	}
	attempts := cd.Attempts + 1
	first := now
	if cd.FirstAttemptAt != nil {
		first = *cd.FirstAttemptAt
	}
	u := catalog.DeliveryUpdate{IfOwner: &d.o.Owner, Attempts: &attempts, FirstAttemptAt: &first}
	switch {
	case derr == nil:
		u.State = catalog.Ptr(catalog.DeliveryDelivered)
	case errs.Is(derr, errs.Unavailable):
		msg := derr.Error()
		u.LastError = &msg
		if delay, retry := m.Retry.Next(attempts, first, now, d.o.Rand); retry {
			u.NextAt = catalog.Ptr(now.Add(delay))
			u.ClearLease = true
		} else {
			u.State = catalog.Ptr(catalog.DeliveryDead)
		}
	default:
		msg := derr.Error()
		if h := errs.HintOf(derr); h != "" {
			msg += " (" + h + ")"
		}
		u.LastError = &msg
		u.State = catalog.Ptr(catalog.DeliveryDead)
	}
	// The outcome is recorded even when ctx ends now: a delivery made and not recorded would
	// be made again.
	wctx := context.WithoutCancel(ctx)
	err := d.o.Store.Tx(wctx, func(tx catalog.Tx) error {
		if derr == nil && m.Target.Incident != nil {
			// The incident is written with the delivery's outcome, under the delivery's ID:
			// it is opened exactly once.
			inc := &catalog.Incident{ID: cd.ID, Title: m.Title, Severity: m.Target.Incident.Severity, Rule: m.Rule,
				EventID: m.EventID, Event: m.Event}
			if inc.Title == "" {
				inc.Title = m.Rule
			}
			if inc.Severity == "" {
				inc.Severity = rules.DefaultSeverity
			}
			if err := tx.CreateIncident(wctx, inc); err != nil && !errs.Is(err, errs.Exists) {
				return err
			}
		}
		_, err := tx.UpdateDelivery(wctx, cd.ID, u)
		return ignoreConflict(err)
	})
	if err != nil {
		return err
	}
	switch {
	case u.State != nil && *u.State == catalog.DeliveryDead:
		d.o.Log.Warn("delivery is a dead letter", "delivery", cd.ID, "rule", cd.Rule, "target", cd.Target,
			"event", cd.EventID, "attempts", attempts, "err", derr)
	case derr != nil:
		d.o.Log.Info("delivery failed; retrying", "delivery", cd.ID, "rule", cd.Rule, "attempts", attempts,
			"next", u.NextAt, "err", derr)
	}
	return nil
}

// ignoreConflict drops errs.Conflict: another worker took the delivery over after this
// one's lease ran out, and its outcome is the one kept.
func ignoreConflict(err error) error {
	if errs.Is(err, errs.Conflict) {
		return nil
	}
	return err
}

// Purge deletes the dispatched events older than the archive period and returns how many
// it deleted.
func (d *Dispatcher) Purge(ctx context.Context) (int, error) {
	var n int
	err := d.o.Store.Tx(ctx, func(tx catalog.Tx) (err error) {
		n, err = tx.DeleteEventsBefore(ctx, tx.Now().Add(-d.o.Archive))
		return err
	})
	return n, err
}

func joinErrors(list []error) error {
	if len(list) == 1 {
		return list[0]
	}
	msg := fmt.Sprintf("%d rules do not compile:", len(list))
	for _, e := range list {
		msg += "\n  " + e.Error()
	}
	return fmt.Errorf("%s", msg)
}
