package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// history is a runbook.History writing one execution's events to the catalog. Each event
// is one transaction that checks this server still owns the execution (so a server whose
// lease was taken over, or whose execution was stopped elsewhere, writes nothing more),
// appends the event, keeps the task token rows, and for the final event writes the
// execution's status with its outbox event.
type history struct {
	s     *Service
	fresh *catalog.Execution // the record to create on ExecutionStarted; nil when resumed

	created chan struct{} // closed once the execution's record exists

	mu        sync.Mutex
	id        string
	started   atomic.Bool
	lost      bool              // taken over or stopped elsewhere: record nothing more
	stopCause string            // the cause Stop gave, for the ExecutionAborted event
	tokens    map[string]string // task attempt -> the token it handed out
	pending   map[string]bool   // tokens whose decision the engine has not received
}

func newHistory(s *Service, fresh *catalog.Execution) *history {
	return &history{s: s, fresh: fresh, created: make(chan struct{}), tokens: map[string]string{}, pending: map[string]bool{}}
}

func attemptKey(ev *runbook.Event) string {
	return fmt.Sprintf("%s#%d.%d", ev.Scope, ev.Step, ev.Attempt)
}

// note updates the token bookkeeping with a recorded event.
func (h *history) note(ev *runbook.Event) {
	switch ev.Type {
	case runbook.TaskScheduled, runbook.TaskSubmitted:
		if ev.Token != "" {
			h.tokens[attemptKey(ev)] = ev.Token
			h.pending[ev.Token] = true
		}
	case runbook.TaskSucceeded, runbook.TaskFailed, runbook.TaskTimedOut:
		delete(h.pending, h.tokens[attemptKey(ev)])
	}
}

func (h *history) isStarted() bool { return h.started.Load() }

func (h *history) setStopCause(c string) {
	h.mu.Lock()
	h.stopCause = c
	h.mu.Unlock()
}

func (h *history) markLost() {
	h.mu.Lock()
	h.lost = true
	h.mu.Unlock()
}

func (h *history) pendingTokens() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.pending))
	for t := range h.pending {
		out = append(out, t)
	}
	return out
}

func (h *history) delivered(token string) {
	h.mu.Lock()
	delete(h.pending, token)
	h.mu.Unlock()
}

var finalStatus = map[runbook.EventType]catalog.ExecutionStatus{
	runbook.ExecutionSucceeded: catalog.ExecutionSucceeded,
	runbook.ExecutionFailed:    catalog.ExecutionFailed,
	runbook.ExecutionTimedOut:  catalog.ExecutionTimedOut,
	runbook.ExecutionAborted:   catalog.ExecutionAborted,
}

// Record implements runbook.History. A transient catalog failure is retried briefly; an
// error fails the execution in the engine, and when the service is closing or the
// execution was lost nothing is written at all.
func (h *history) Record(ev runbook.Event) error {
	const op = "orchestrate.history"
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost {
		return errs.Errorf(op, errs.Conflict, "execution %s is no longer run by this server", h.id)
	}
	if ev.Type == runbook.ExecutionAborted && h.stopCause != "" {
		ev.Cause = h.stopCause
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if h.s.isClosing() {
			return errClosed
		}
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-h.s.ctx.Done():
				return errClosed
			}
		}
		err = h.s.opts.Store.Tx(h.s.ctx, func(tx catalog.Tx) error { return h.write(h.s.ctx, tx, &ev) })
		if !errs.Is(err, errs.Unavailable) {
			break
		}
	}
	if err != nil {
		if errs.Is(err, errs.Conflict) {
			h.lost = true
		}
		return err
	}
	if ev.Type == runbook.ExecutionStarted && !h.started.Load() {
		h.id = ev.Execution
		h.started.Store(true)
		close(h.created)
	}
	h.note(&ev)
	return nil
}

func (h *history) write(ctx context.Context, tx catalog.Tx, ev *runbook.Event) error {
	const op = "orchestrate.history"
	s := h.s
	id := h.id
	if ev.Type == runbook.ExecutionStarted && !h.started.Load() {
		e := *h.fresh
		e.ID, e.Name, e.Input, e.StartedAt, e.Owner = ev.Execution, ev.Name, ev.Input, ev.Timestamp, s.opts.Owner
		lease := tx.Now().Add(s.opts.Lease)
		e.LeaseUntil = &lease
		if err := catalog.CreateExecutionWithEvent(ctx, tx, &e, s.opts.Site); err != nil {
			return err
		}
		id = e.ID
	} else {
		e, err := tx.GetExecution(ctx, id)
		if err != nil {
			return err
		}
		if e.Owner != s.opts.Owner || e.Status != catalog.ExecutionRunning {
			return errs.Errorf(op, errs.Conflict, "execution %s is %s and owned by %q", id, e.Status, e.Owner)
		}
	}
	if err := appendEvent(ctx, tx, id, *ev); err != nil {
		return err
	}
	switch ev.Type {
	case runbook.TaskScheduled, runbook.TaskSubmitted:
		if ev.Token != "" {
			err := tx.CreateTaskToken(ctx, &catalog.TaskToken{Token: ev.Token, Execution: id, State: ev.State})
			if err != nil && !errs.Is(err, errs.Exists) {
				return err
			}
		}
	case runbook.TaskSucceeded, runbook.TaskFailed, runbook.TaskTimedOut:
		// The task's outcome closes its token, so a late decision is refused (Conflict)
		// rather than accepted and ignored.
		if tok := h.tokens[attemptKey(ev)]; tok != "" {
			tk, err := tx.GetTaskToken(ctx, tok)
			if err != nil {
				return err
			}
			if tk.Resolution == catalog.TokenUnresolved {
				d := catalog.TokenDecision{Resolution: catalog.TokenFailure, Error: ev.Error, Cause: ev.Cause}
				if ev.Type == runbook.TaskSucceeded {
					d = catalog.TokenDecision{Resolution: catalog.TokenSuccess, Output: ev.Output}
				}
				if _, err := tx.ResolveTaskToken(ctx, tok, d); err != nil {
					return err
				}
			}
		}
	}
	if st, ok := finalStatus[ev.Type]; ok {
		u := catalog.ExecutionUpdate{IfOwner: &s.opts.Owner, Status: &st, Error: &ev.Error, Cause: &ev.Cause}
		if st == catalog.ExecutionSucceeded {
			u.Output = ev.Output
		}
		if _, err := catalog.UpdateExecutionWithEvent(ctx, tx, id, u, s.opts.Site); err != nil {
			return err
		}
	}
	return nil
}

// decodeHistory turns the catalog's history rows back into engine events.
func decodeHistory(id string, rows []catalog.HistoryEvent) ([]runbook.Event, error) {
	out := make([]runbook.Event, 0, len(rows))
	for _, r := range rows {
		var ev runbook.Event
		if err := json.Unmarshal(r.Event, &ev); err != nil {
			return nil, errs.E("orchestrate.Resume", errs.Corrupt, fmt.Errorf("execution %s history event %d: %w", id, r.Seq, err))
		}
		out = append(out, ev)
	}
	return out, nil
}
