package orchestrate

import (
	"context"
	"encoding/json"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// ErrDenied is the error name a denial without one fails the waiting task with.
const ErrDenied = "Rewind.Denied"

// Approve completes the .waitForTaskToken task waiting for token with output (empty means
// {}). The decision is stored in the catalog first, so it reaches the execution on
// whichever server runs it (within Poll) or after it resumes; on this server it is handed
// over at once. Errors: errs.NotFound for an unknown token, errs.Conflict when the token
// was already decided or its task ended (timed out, say) or its execution ended,
// errs.Invalid for output that is not JSON.
func (s *Service) Approve(ctx context.Context, token string, output json.RawMessage) (*catalog.TaskToken, error) {
	return s.decide(ctx, "orchestrate.Approve", token, catalog.TokenDecision{Resolution: catalog.TokenSuccess, Output: output})
}

// Deny fails the .waitForTaskToken task waiting for token with errorName (ErrDenied when
// empty) and cause, which the state's Retry and Catch see. Errors are those of Approve.
func (s *Service) Deny(ctx context.Context, token, errorName, cause string) (*catalog.TaskToken, error) {
	if errorName == "" {
		errorName = ErrDenied
	}
	return s.decide(ctx, "orchestrate.Deny", token, catalog.TokenDecision{Resolution: catalog.TokenFailure, Error: errorName, Cause: cause})
}

func (s *Service) decide(ctx context.Context, op, token string, d catalog.TokenDecision) (*catalog.TaskToken, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var tk *catalog.TaskToken
	err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		cur, err := tx.GetTaskToken(ctx, token)
		if err != nil {
			return err
		}
		e, err := tx.GetExecution(ctx, cur.Execution)
		if err != nil {
			return err
		}
		if e.Status.Terminal() {
			return errs.Errorf(op, errs.Conflict, "execution %s already ended (%s): the decision comes too late", e.ID, e.Status)
		}
		tk, err = tx.ResolveTaskToken(ctx, token, d)
		return err
	})
	if err != nil {
		return nil, err
	}
	if r := s.local(tk.Execution); r != nil {
		s.deliver(r, tk)
	}
	return tk, nil
}

// deliverPending hands the engine of r the decisions recorded for its pending tokens.
func (s *Service) deliverPending(ctx context.Context, r *run) error {
	pending := r.h.pendingTokens()
	if len(pending) == 0 {
		return nil
	}
	var toks []*catalog.TaskToken
	err := s.opts.Store.Tx(ctx, func(tx catalog.Tx) error {
		var err error
		toks, err = tx.ListTaskTokens(ctx, catalog.TaskTokenFilter{Execution: &r.id})
		return err
	})
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(pending))
	for _, t := range pending {
		want[t] = true
	}
	for _, tk := range toks {
		if want[tk.Token] && tk.Resolution != catalog.TokenUnresolved {
			s.deliver(r, tk)
		}
	}
	return nil
}

// deliver hands a decision to the engine. errs.NotFound means the task does not wait for
// it yet (the execution is still replaying towards it): the next pass tries again.
func (s *Service) deliver(r *run, tk *catalog.TaskToken) {
	var err error
	switch tk.Resolution {
	case catalog.TokenSuccess:
		err = r.engine.SendTaskSuccess(tk.Token, tk.Output)
	case catalog.TokenFailure:
		err = r.engine.SendTaskFailure(tk.Token, tk.Error, tk.Cause)
	default:
		return
	}
	if err == nil {
		r.h.delivered(tk.Token)
	}
}
