package orchestrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// Resume is the service's maintenance pass, run at start and then every Poll by the
// background loop. It
//   - claims the RUNNING executions that no server owns, that this server owned before a
//     restart, or whose owner's lease expired (that server died), and resumes each from
//     its recorded history (Engine.Resume: completed tasks are not run again; a task
//     interrupted without a recorded outcome runs again only if it is idempotent, and
//     otherwise fails the execution with States.Runtime);
//   - renews the leases of the executions it runs, and stops running those another server
//     took over or stopped;
//   - hands the decisions recorded on task tokens (Approve, Deny, from any server) to the
//     engine waiting for them.
//
// An execution that cannot be resumed (its definition no longer validates, a task
// resource is no longer registered, its history is corrupt) is marked FAILED with
// States.Runtime. Errors are the catalog's; the pass stops at the first. Safe for
// concurrent use (passes run one at a time).
func (s *Service) Resume(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	if s.isClosing() {
		return errClosed
	}
	var (
		running []*catalog.Execution
		now     = s.opts.Clock.Now()
	)
	err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		now = tx.Now()
		running, err = tx.ListExecutions(ctx, catalog.ExecutionFilter{Status: catalog.Ptr(catalog.ExecutionRunning)})
		return err
	})
	if err != nil {
		return err
	}
	byID := make(map[string]*catalog.Execution, len(running))
	for _, e := range running {
		byID[e.ID] = e
	}
	s.mu.Lock()
	local := make([]*run, 0, len(s.runs))
	for _, r := range s.runs {
		if r.h.isStarted() {
			local = append(local, r)
		}
	}
	s.mu.Unlock()
	var errList []error
	for _, r := range local {
		e := byID[r.id]
		if e == nil || e.Owner != s.opts.Owner {
			// Stopped elsewhere or taken over: run it no more, record nothing more.
			r.h.markLost()
			r.x.Stop()
			continue
		}
		if e.LeaseUntil == nil || e.LeaseUntil.Sub(now) < s.opts.Lease/2 {
			if err := s.claim(ctx, r.id); err != nil {
				if errs.Is(err, errs.Conflict) {
					r.h.markLost()
					r.x.Stop()
					continue
				}
				errList = append(errList, err)
			}
		}
		if err := s.deliverPending(ctx, r); err != nil {
			errList = append(errList, err)
		}
	}
	for _, e := range running {
		if s.local(e.ID) != nil {
			continue
		}
		free := e.Owner == "" || e.Owner == s.opts.Owner || e.LeaseUntil == nil || e.LeaseUntil.Before(now)
		if !free {
			continue
		}
		if err := s.resume(ctx, e.ID); err != nil && !errs.Is(err, errs.Conflict) {
			errList = append(errList, fmt.Errorf("resume execution %s: %w", e.ID, err))
		}
	}
	return errors.Join(errList...)
}

// claim takes or renews the lease on an execution.
func (s *Service) claim(ctx context.Context, id string) error {
	return s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		_, err := tx.ClaimExecution(ctx, id, s.opts.Owner, tx.Now().Add(s.opts.Lease))
		return err
	})
}

// resume claims one execution and continues it from its history.
func (s *Service) resume(ctx context.Context, id string) error {
	var (
		e    *catalog.Execution
		rows []catalog.HistoryEvent
	)
	err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		if e, err = tx.ClaimExecution(ctx, id, s.opts.Owner, tx.Now().Add(s.opts.Lease)); err != nil {
			return err
		}
		rows, err = tx.ListHistory(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	events, err := decodeHistory(id, rows)
	if err != nil {
		return s.failUnresumable(ctx, e, rows, err)
	}
	if n := len(events); n > 0 {
		if st, ok := finalStatus[events[n-1].Type]; ok {
			// The history ended but the status was not written with it: write it now.
			last := events[n-1]
			u := catalog.ExecutionUpdate{Status: &st, Error: &last.Error, Cause: &last.Cause}
			if st == catalog.ExecutionSucceeded {
				u.Output = last.Output
			}
			return s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
				_, err := catalog.UpdateExecutionWithEvent(ctx, tx, id, u, s.opts.Site)
				return err
			})
		}
	}
	def, err := parseDefinition(e.Runbook, e.Definition)
	if err != nil {
		return s.failUnresumable(ctx, e, rows, err)
	}
	h := newHistory(s, nil)
	h.id = id
	h.started.Store(true)
	close(h.created)
	for i := range events {
		h.note(&events[i])
	}
	eng := runbook.NewEngine(s.opts.Registry, runbook.Options{Clock: s.opts.Clock, History: h})
	if s.isClosing() {
		return errClosed
	}
	x, err := eng.Resume(s.ctx, def, events)
	if err != nil {
		return s.failUnresumable(ctx, e, rows, err)
	}
	s.launch(x, eng, h)
	return nil
}

// failUnresumable ends an execution that cannot be resumed: FAILED with States.Runtime and
// the reason, recorded as its last history event.
func (s *Service) failUnresumable(ctx context.Context, e *catalog.Execution, rows []catalog.HistoryEvent, reason error) error {
	var last int64
	if len(rows) > 0 {
		last = rows[len(rows)-1].Seq
	}
	cause := "the execution cannot be resumed: " + reason.Error()
	return s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		ev := runbook.Event{ID: last + 1, Type: runbook.ExecutionFailed, Timestamp: tx.Now(), Error: runbook.ErrRuntime, Cause: cause}
		if err := appendEvent(ctx, tx, e.ID, ev); err != nil {
			return err
		}
		_, err := catalog.UpdateExecutionWithEvent(ctx, tx, e.ID, catalog.ExecutionUpdate{IfOwner: &s.opts.Owner,
			Status: catalog.Ptr(catalog.ExecutionFailed), Error: catalog.Ptr(runbook.ErrRuntime), Cause: &cause}, s.opts.Site)
		return err
	})
}
