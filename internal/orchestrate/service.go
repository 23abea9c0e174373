package orchestrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// Defaults for Options.
const (
	DefaultLease = 30 * time.Second // how long a claim on an execution holds without renewal
	DefaultPoll  = time.Second      // how often decisions, leases and orphans are checked
)

// Options configure a Service.
type Options struct {
	Store    catalog.Store
	Registry runbook.Registry
	// Owner identifies this server in the executions it claims; required and unique among
	// the servers sharing the catalog.
	Owner string
	// Lease is how long a claim holds (DefaultLease when 0); it is renewed while the
	// execution runs, so another server takes an execution over only after its server
	// stopped renewing for this long.
	Lease time.Duration
	// Poll is how often the background loop runs Resume (DefaultPoll when 0); negative
	// runs no loop (tests call Resume themselves).
	Poll time.Duration
	// Clock is the engine's clock (Wait states, retries, timeouts); the wall clock when nil.
	// Leases use the catalog's clock.
	Clock runbook.Clock
	// Site is recorded in the execution status events.
	Site string
	// Log receives the failures of the background Resume passes (nil: not logged).
	Log *slog.Logger
}

// Service runs executions and keeps them in the catalog. Its methods are safe for
// concurrent use.
type Service struct {
	opts Options

	ctx    context.Context // the lifetime of the executions this service runs
	cancel context.CancelFunc
	loop   sync.WaitGroup
	tickMu sync.Mutex

	closing atomic.Bool
	mu      sync.Mutex
	runs    map[string]*run
	watch   sync.WaitGroup
}

// run is one execution this service runs.
type run struct {
	id     string
	engine *runbook.Engine
	x      *runbook.Execution
	h      *history
	done   chan struct{} // closed once the execution returned and the service forgot it
}

// New returns a Service and starts its background loop; call Resume once at start to pick
// up the executions a previous run of the server left. errs.Invalid when Store, Registry or
// Owner is missing.
func New(opts Options) (*Service, error) {
	const op = "orchestrate.New"
	if opts.Store == nil || opts.Registry == nil || opts.Owner == "" {
		return nil, errs.Errorf(op, errs.Invalid, "a store, a task registry and an owner are required")
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Poll == 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Clock == nil {
		opts.Clock = runbook.SystemClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{opts: opts, ctx: ctx, cancel: cancel, runs: map[string]*run{}}
	if opts.Poll > 0 {
		s.loop.Add(1)
		go s.background()
	}
	return s, nil
}

func (s *Service) background() {
	defer s.loop.Done()
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			// An error here is transient (the catalog unreachable) and the next tick tries
			// again; every execution's own failures are recorded in its history.
			if err := s.Resume(s.ctx); err != nil && s.ctx.Err() == nil && s.opts.Log != nil {
				s.opts.Log.Warn("resuming runbook executions; trying again", "err", err)
			}
		}
	}
}

func (s *Service) isClosing() bool { return s.closing.Load() }

var errClosed = errs.Errorf("orchestrate", errs.Unavailable, "the execution service is shutting down")

// Close stops the background loop and every execution this service runs without failing
// them: nothing more is recorded, and their leases are released so that the next server to
// start (or another one sharing the catalog) resumes them at once. Close waits for the
// executions' goroutines to return.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closing.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	var ids []string
	for id, r := range s.runs {
		if r.h.isStarted() {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	s.cancel()
	// A Resume pass in progress ends before the executions are awaited: taking the lock
	// waits for it (later passes see isClosing and return at once).
	s.tickMu.Lock()
	//lint:ignore SA2001 the empty critical section is the wait for a pass in progress
	s.tickMu.Unlock()
	s.loop.Wait()
	s.watch.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errList []error
	for _, id := range ids {
		err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
			_, err := tx.UpdateExecution(ctx, id, catalog.ExecutionUpdate{IfOwner: &s.opts.Owner, Owner: catalog.Ptr(""), ClearLease: true})
			return err
		})
		if err != nil && !errs.Is(err, errs.Conflict) && !errs.Is(err, errs.NotFound) {
			errList = append(errList, fmt.Errorf("release execution %s: %w", id, err))
		}
	}
	return errors.Join(errList...)
}

// Start starts an execution of the catalog's runbook name with input (empty means {}) and
// returns it once its start is recorded. name is the execution's name (empty: its ID).
// Errors: errs.NotFound for an unknown runbook; errs.Invalid for input that is not JSON or a
// definition that cannot run (every problem listed, unknown task resources named);
// errs.Unavailable when the service is closing; the catalog's errors.
func (s *Service) Start(ctx context.Context, runbookName string, input json.RawMessage, name string) (*catalog.Execution, error) {
	var rb *catalog.Runbook
	err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		rb, err = tx.GetRunbook(ctx, runbookName)
		return err
	})
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Errorf("orchestrate.Start", errs.NotFound, "runbook %q is not in the catalog", runbookName).
			WithHint("see 'rewind --server … runbooks'")
	}
	if err != nil {
		return nil, err
	}
	return s.start(ctx, rb.Name, rb.Definition, input, name)
}

// StartDefinition starts an execution of a definition (ASL JSON or YAML) that is not in
// the catalog's runbooks; the execution keeps a copy. Errors are those of Start.
func (s *Service) StartDefinition(ctx context.Context, def []byte, input json.RawMessage, name string) (*catalog.Execution, error) {
	norm, err := Normalize(def)
	if err != nil {
		return nil, err
	}
	return s.start(ctx, "", norm, input, name)
}

func parseDefinition(runbookName string, def json.RawMessage) (*runbook.Definition, error) {
	d, err := runbook.Parse(def)
	if err != nil {
		return nil, err
	}
	d.Name = runbookName
	if d.Name == "" {
		d.Name = "runbook"
	}
	return d, nil
}

func (s *Service) start(ctx context.Context, runbookName string, def json.RawMessage, input json.RawMessage, name string) (*catalog.Execution, error) {
	const op = "orchestrate.Start"
	d, err := parseDefinition(runbookName, def)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(input))) > 0 && !json.Valid(input) {
		return nil, errs.Errorf(op, errs.Invalid, "the execution input is not valid JSON").
			WithHint(`pass a JSON object, such as '{"resource": "db"}'`)
	}
	if s.isClosing() {
		return nil, errClosed
	}
	h := newHistory(s, &catalog.Execution{Runbook: runbookName, Definition: def})
	eng := runbook.NewEngine(s.opts.Registry, runbook.Options{Clock: s.opts.Clock, History: h})
	x, err := eng.Start(s.ctx, d, input, name)
	if err != nil {
		return nil, err
	}
	r := s.launch(x, eng, h)
	select {
	case <-h.created:
	case <-r.done:
		select {
		case <-h.created:
		default:
			res, _ := x.Wait(ctx)
			return nil, errs.Errorf(op, errs.Unavailable, "the execution could not be recorded: %s", res.Cause)
		}
	case <-ctx.Done():
		return nil, errs.E(op, errs.Canceled, ctx.Err())
	}
	return s.get(ctx, x.ID)
}

// launch registers a started or resumed execution and watches it until it returns.
func (s *Service) launch(x *runbook.Execution, eng *runbook.Engine, h *history) *run {
	r := &run{id: x.ID, engine: eng, x: x, h: h, done: make(chan struct{})}
	s.mu.Lock()
	// Once Close began, the execution is not registered: its context is canceled and its
	// history refuses writes, so it ends at once without Close waiting for it.
	tracked := !s.closing.Load()
	if tracked {
		s.runs[r.id] = r
		s.watch.Add(1)
	}
	s.mu.Unlock()
	go func() {
		if tracked {
			defer s.watch.Done()
		}
		_, _ = x.Wait(context.Background()) // the history recorded the outcome
		s.mu.Lock()
		if s.runs[r.id] == r {
			delete(s.runs, r.id)
		}
		s.mu.Unlock()
		close(r.done)
	}()
	return r
}

func (s *Service) local(id string) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

func (s *Service) get(ctx context.Context, id string) (*catalog.Execution, error) {
	var e *catalog.Execution
	err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		e, err = tx.GetExecution(ctx, id)
		return err
	})
	return e, err
}

// Stop aborts a RUNNING execution with cause (ABORTED; the status event is written with
// it), whether this server, another one or none runs it, and returns it. Errors:
// errs.NotFound for an unknown execution, errs.Conflict when it already ended.
func (s *Service) Stop(ctx context.Context, id, cause string) (*catalog.Execution, error) {
	const op = "orchestrate.Stop"
	if cause == "" {
		cause = "the execution was stopped"
	}
	if r := s.local(id); r != nil && r.h.isStarted() {
		r.h.setStopCause(cause)
		r.x.Stop()
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, errs.E(op, errs.Canceled, ctx.Err())
		}
		e, err := s.get(ctx, id)
		if err != nil || e.Status.Terminal() {
			return e, err
		}
		// The abort could not be recorded locally (the catalog failed meanwhile): record
		// it as for an execution that runs nowhere.
	}
	var (
		e     *catalog.Execution
		err   error
		ended bool
	)
	// A Conflict other than "already ended" is a race with the owner's own history
	// write: read the history again and retry.
	for attempt := 0; attempt < 3; attempt++ {
		err = s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
			cur, err := tx.GetExecution(ctx, id)
			if err != nil {
				return err
			}
			if cur.Status.Terminal() {
				ended = true
				return errs.Errorf(op, errs.Conflict, "execution %s already ended: %s", id, cur.Status)
			}
			hist, err := tx.ListHistory(ctx, id)
			if err != nil {
				return err
			}
			var last int64
			if len(hist) > 0 {
				last = hist[len(hist)-1].Seq
			}
			ev := runbook.Event{ID: last + 1, Type: runbook.ExecutionAborted, Timestamp: tx.Now(), Cause: cause}
			if err := appendEvent(ctx, tx, id, ev); err != nil {
				return err
			}
			e, err = catalog.UpdateExecutionWithEvent(ctx, tx, id, catalog.ExecutionUpdate{
				Status: catalog.Ptr(catalog.ExecutionAborted), Cause: &cause}, s.opts.Site)
			return err
		})
		if !errs.Is(err, errs.Conflict) || ended {
			break
		}
	}
	return e, err
}

func appendEvent(ctx context.Context, tx catalog.Tx, id string, ev runbook.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return errs.E("orchestrate.history", errs.Internal, err)
	}
	return tx.AppendHistory(ctx, id, []catalog.HistoryEvent{{Seq: ev.ID, Type: string(ev.Type), Time: ev.Timestamp, Event: b}})
}
