package runbook

import (
	"context"
	"sync"
)

// Parallel and Map: run sub-machines concurrently, each in its own history scope.

func (r *run) parallelAttempt(ctx context.Context, s *state, input any, sc *stateCtx, attempt int) (any, *failure) {
	ctxObj := r.contextObj(sc, attempt, "", nil)
	eff, f := r.inputPath(s, input, ctxObj)
	if f != nil {
		return nil, f
	}
	if s.parameters != nil {
		if eff, f = r.applyTemplate(s, s.parameters, "Parameters", eff, ctxObj); f != nil {
			return nil, f
		}
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outs := make([]any, len(s.branches))
	fails := make([]*failure, len(s.branches))
	var wg sync.WaitGroup
	for i, b := range s.branches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], fails[i] = r.runMachine(bctx, b, childScope(sc.scope, s.name, sc.step, attempt, 'b', i), deepCopy(eff))
			if fails[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if bf := firstFailure(ctx, bctx, fails); bf != nil {
		out := *bf
		out.fromBranch = true
		if f := r.emitF(Event{Type: ParallelStateFailed, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Error: out.name, Cause: out.cause}); f != nil {
			return nil, f
		}
		return nil, &out
	}
	result := make([]any, len(outs))
	copy(result, outs)
	return r.finishResult(s, input, result, ctxObj)
}

// firstFailure returns the lowest-indexed failure that is not a sibling cancellation.
func firstFailure(ctx, inner context.Context, fails []*failure) *failure {
	var canceled *failure
	for _, f := range fails {
		if f == nil {
			continue
		}
		if f.name == ErrRuntime && inner.Err() != nil && ctx.Err() == nil && f.cause == context.Canceled.Error() {
			if canceled == nil {
				canceled = f
			}
			continue
		}
		return f
	}
	return canceled
}

func (r *run) mapAttempt(ctx context.Context, s *state, input any, sc *stateCtx, attempt int) (any, *failure) {
	ctxObj := r.contextObj(sc, attempt, "", nil)
	eff, f := r.inputPath(s, input, ctxObj)
	if f != nil {
		return nil, f
	}
	itemsV := eff
	if s.itemsPath != nil {
		v, err := s.itemsPath.eval(eff, ctxObj)
		if err != nil {
			return nil, fail(ErrRuntime, "state %q ItemsPath: %v", s.name, err)
		}
		itemsV = v
	}
	items, ok := itemsV.([]any)
	if !ok {
		return nil, fail(ErrRuntime, "state %q: the Map items must be an array, got %s", s.name, typeName(itemsV))
	}
	limit := s.maxConcurrency
	if s.maxConcPath != nil {
		v, err := s.maxConcPath.eval(eff, ctxObj)
		n, ok := asInt(v)
		if err != nil || !ok || n < 0 {
			return nil, fail(ErrRuntime, "state %q MaxConcurrencyPath %s must select a non-negative integer", s.name, s.maxConcPath.src)
		}
		limit = n
	}
	tolCount, tolPercent := int64(-1), float64(-1)
	if s.hasTolerance {
		if s.toleratedCount > 0 || s.toleratedCountP == nil && s.toleratedPercentP == nil {
			tolCount = s.toleratedCount
		}
		if s.toleratedPercent > 0 {
			tolPercent = s.toleratedPercent
		}
		if s.toleratedCountP != nil {
			v, err := s.toleratedCountP.eval(eff, ctxObj)
			n, ok := asInt(v)
			if err != nil || !ok || n < 0 {
				return nil, fail(ErrRuntime, "state %q ToleratedFailureCountPath must select a non-negative integer", s.name)
			}
			tolCount = n
		}
		if s.toleratedPercentP != nil {
			v, err := s.toleratedPercentP.eval(eff, ctxObj)
			p, ok := asFloat(v)
			if err != nil || !ok || p < 0 || p > 100 {
				return nil, fail(ErrRuntime, "state %q ToleratedFailurePercentagePath must select a number from 0 to 100", s.name)
			}
			tolPercent = p
		}
	}
	// Build every iteration's input first, so selector failures fail the state up front.
	inputs := make([]any, len(items))
	for i, item := range items {
		inputs[i] = item
		if s.itemSelector != nil {
			ictx := r.contextObj(sc, attempt, "", map[string]any{"Index": intNumber(int64(i)), "Value": item})
			v, f := r.applyTemplate(s, s.itemSelector, "ItemSelector", eff, ictx)
			if f != nil {
				return nil, f
			}
			inputs[i] = v
		}
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outs := make([]any, len(items))
	fails := make([]*failure, len(items))
	var sem chan struct{}
	if limit > 0 {
		sem = make(chan struct{}, limit)
	}
	var wg sync.WaitGroup
	for i := range items {
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-mctx.Done():
			}
			if mctx.Err() != nil {
				fails[i] = &failure{name: ErrRuntime, cause: context.Canceled.Error()}
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sem != nil {
				defer func() { <-sem }()
			}
			scope := childScope(sc.scope, s.name, sc.step, attempt, 'i', i)
			if hf := r.emitF(Event{Type: MapIterationStarted, Scope: scope, State: s.name}); hf != nil {
				fails[i] = hf
				cancel()
				return
			}
			outs[i], fails[i] = r.runMachine(mctx, s.processor, scope, inputs[i])
			if fails[i] != nil {
				if mctx.Err() == nil {
					// A history that cannot be written fails the iteration with that error:
					// an execution must not go on without its record.
					if hf := r.emitF(Event{Type: MapIterationFailed, Scope: scope, State: s.name, Error: fails[i].name, Cause: fails[i].cause}); hf != nil {
						fails[i] = hf
					}
				}
				if !s.hasTolerance {
					cancel()
				}
				return
			}
			if hf := r.emitF(Event{Type: MapIterationSucceeded, Scope: scope, State: s.name}); hf != nil {
				fails[i] = hf
				cancel()
			}
		}()
	}
	wg.Wait()
	if !s.hasTolerance {
		if mf := firstFailure(ctx, mctx, fails); mf != nil {
			if f := r.emitF(Event{Type: MapStateFailed, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Error: mf.name, Cause: mf.cause}); f != nil {
				return nil, f
			}
			return nil, mf
		}
	} else {
		if ctx.Err() != nil {
			return nil, &failure{name: ErrRuntime, cause: context.Cause(ctx).Error()}
		}
		failed := 0
		for i, f := range fails {
			if f != nil {
				failed++
				outs[i] = map[string]any{"Error": f.name, "Cause": f.cause}
			}
		}
		exceeded := tolCount >= 0 && int64(failed) > tolCount
		if len(items) > 0 && tolPercent >= 0 && float64(failed)*100/float64(len(items)) > tolPercent {
			exceeded = true
		}
		if tolCount >= 0 && tolPercent >= 0 {
			// Both set: the Map fails only when either threshold is exceeded.
			exceeded = int64(failed) > tolCount || len(items) > 0 && float64(failed)*100/float64(len(items)) > tolPercent
		}
		if exceeded {
			return nil, fail(ErrExceedToleratedFailure, "state %q: %d of %d iterations failed, more than tolerated", s.name, failed, len(items))
		}
	}
	result := make([]any, len(outs))
	copy(result, outs)
	return r.finishResult(s, input, result, ctxObj)
}
