package runbook

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// run is one execution's interpreter state.
type run struct {
	e     *Engine
	def   *Definition
	id    string
	name  string
	input any
	start time.Time
	rp    *replay
	env   intrinsicEnv

	hmu    sync.Mutex
	nextID int64
	seen   map[string]bool // events already in the replayed history
}

func (e *Engine) newRun(def *Definition, id, name string, input any, start time.Time, rp *replay, lastID int64) *run {
	r := &run{e: e, def: def, id: id, name: name, input: input, start: start, rp: rp, nextID: lastID,
		env: intrinsicEnv{rand: e.opts.Rand}}
	if rp != nil {
		r.seen = map[string]bool{}
		for _, evs := range rp.tasks {
			for _, ev := range evs {
				r.seen[eventKey(ev)] = true
			}
		}
		for _, m := range []map[string]*Event{rp.entered, rp.exited, rp.waits} {
			for _, ev := range m {
				r.seen[eventKey(ev)] = true
			}
		}
		for _, ev := range rp.retries {
			r.seen[eventKey(ev)] = true
		}
		for _, ev := range rp.other {
			r.seen[eventKey(ev)] = true
		}
	}
	return r
}

func eventKey(ev *Event) string {
	return fmt.Sprintf("%s|%s|%d|%d|%s", ev.Type, ev.Scope, ev.Step, ev.Attempt, ev.State)
}

// emit records ev unless the replayed history already holds it.
func (r *run) emit(ev Event) error {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if r.seen != nil && r.seen[eventKey(&ev)] {
		return nil
	}
	r.nextID++
	ev.ID = r.nextID
	if ev.Timestamp.IsZero() {
		ev.Timestamp = r.e.opts.Clock.Now().UTC()
	}
	if r.e.opts.History == nil {
		return nil
	}
	if err := r.e.opts.History.Record(ev); err != nil {
		return fmt.Errorf("recording %s: %w", ev.Type, err)
	}
	return nil
}

// emitF emits and turns a history failure into a States.Runtime failure.
func (r *run) emitF(ev Event) *failure {
	if err := r.emit(ev); err != nil {
		return &failure{name: ErrRuntime, cause: "history: " + err.Error()}
	}
	return nil
}

func (r *run) launch(parent context.Context, fresh bool) *Execution {
	ctx, cancel := context.WithCancelCause(parent)
	x := &Execution{ID: r.id, Name: r.name, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(x.done)
		defer cancel(nil)
		if fresh {
			if f := r.emitF(Event{Type: ExecutionStarted, Timestamp: r.start, Execution: r.id, Name: r.name, Input: mustJSON(r.input)}); f != nil {
				x.result = Result{Status: Failed, Error: f.name, Cause: f.cause}
				return
			}
		}
		if t := r.def.root.timeout; t > 0 {
			remaining := r.start.Add(t).Sub(r.e.opts.Clock.Now())
			timer := r.e.opts.Clock.After(max(remaining, 0))
			go func() {
				select {
				case <-timer:
					cancel(errTimedOut)
				case <-ctx.Done():
				}
			}()
		}
		out, f := r.runMachine(ctx, r.def.root, "", r.input)
		x.result = r.finish(ctx, parent, out, f)
	}()
	return x
}

func (r *run) finish(ctx, parent context.Context, out any, f *failure) Result {
	cause := context.Cause(ctx)
	var res Result
	var ev Event
	switch {
	case f == nil:
		b := mustJSON(out)
		res = Result{Status: Succeeded, Output: b}
		ev = Event{Type: ExecutionSucceeded, Output: b}
	case errors.Is(cause, errTimedOut):
		res = Result{Status: TimedOut, Error: ErrTimeout, Cause: cause.Error()}
		ev = Event{Type: ExecutionTimedOut, Error: res.Error, Cause: res.Cause}
	case ctx.Err() != nil:
		reason := "the execution was stopped"
		if parent.Err() != nil {
			reason = "the execution's context was canceled: " + parent.Err().Error()
		}
		res = Result{Status: Aborted, Cause: reason}
		ev = Event{Type: ExecutionAborted, Cause: reason}
	default:
		res = Result{Status: Failed, Error: f.name, Cause: f.cause}
		ev = Event{Type: ExecutionFailed, Error: f.name, Cause: f.cause}
	}
	if err := r.emit(ev); err != nil && res.Status == Succeeded {
		res = Result{Status: Failed, Error: ErrRuntime, Cause: "history: " + err.Error()}
	}
	return res
}

// stateCtx locates one state visit.
type stateCtx struct {
	scope   string
	step    int
	name    string
	entered time.Time
}

func childScope(scope, state string, step, attempt int, kind byte, i int) string {
	s := fmt.Sprintf("%s@%d.%d/%c%d", state, step, attempt, kind, i)
	if scope == "" {
		return s
	}
	return scope + "/" + s
}

// runMachine runs a state machine (top level, branch or iteration) in one scope.
func (r *run) runMachine(ctx context.Context, m *machine, scope string, input any) (any, *failure) {
	cur := m.startAt
	for step := 0; ; step++ {
		if ctx.Err() != nil {
			return nil, &failure{name: ErrRuntime, cause: context.Cause(ctx).Error()}
		}
		s := m.states[cur]
		k := visitKey(scope, step)
		if r.rp != nil {
			if ev := r.rp.exited[k]; ev != nil {
				if ev.State != cur {
					return nil, fail(ErrRuntime, "the recorded history does not match the definition: step %d of scope %q exited state %q, but the definition is at %q", step, scope, ev.State, cur)
				}
				out, err := decodeJSON(ev.Output)
				if err != nil {
					return nil, fail(ErrRuntime, "recorded output of state %q is not JSON: %v", cur, err)
				}
				if ev.Next == "" {
					return out, nil
				}
				cur, input = ev.Next, out
				continue
			}
		}
		sc := &stateCtx{scope: scope, step: step, name: cur, entered: r.e.opts.Clock.Now().UTC()}
		if r.rp != nil {
			if ev := r.rp.entered[k]; ev != nil {
				sc.entered = ev.Timestamp
			}
		}
		if s.typ != "Wait" {
			if f := r.emitF(Event{Type: StateEntered(s.typ), Timestamp: sc.entered, Scope: scope, Step: step, State: cur, Input: mustJSON(input)}); f != nil {
				return nil, f
			}
		}
		out, next, f := r.runState(ctx, s, input, sc)
		if f != nil {
			return nil, f
		}
		if f := r.emitF(Event{Type: StateExited(s.typ), Scope: scope, Step: step, State: cur, Output: mustJSON(out), Next: next}); f != nil {
			return nil, f
		}
		if next == "" {
			return out, nil
		}
		cur, input = next, out
	}
}

func (r *run) contextObj(sc *stateCtx, retryCount int, token string, item map[string]any) map[string]any {
	c := map[string]any{
		"Execution": map[string]any{
			"Id": r.id, "Name": r.name, "Input": r.input,
			"StartTime": r.start.Format(time.RFC3339Nano),
		},
		"State": map[string]any{
			"Name": sc.name, "EnteredTime": sc.entered.Format(time.RFC3339Nano),
			"RetryCount": intNumber(int64(retryCount)),
		},
		"StateMachine": map[string]any{"Id": r.machineName(), "Name": r.machineName()},
	}
	if token != "" {
		c["Task"] = map[string]any{"Token": token}
	}
	if item != nil {
		c["Map"] = map[string]any{"Item": item}
	}
	return c
}

func (r *run) machineName() string {
	if r.def.Name == "" {
		return "runbook"
	}
	return r.def.Name
}

func (r *run) inputPath(s *state, input any, ctxObj any) (any, *failure) {
	switch {
	case s.inputNull:
		return map[string]any{}, nil
	case s.inputPath == nil:
		return input, nil
	}
	v, err := s.inputPath.eval(input, ctxObj)
	if err != nil {
		return nil, fail(ErrRuntime, "state %q InputPath: %v", s.name, err)
	}
	return v, nil
}

func (r *run) outputPath(s *state, v any, ctxObj any) (any, *failure) {
	switch {
	case s.outputNull:
		return map[string]any{}, nil
	case s.outputPath == nil:
		return v, nil
	}
	out, err := s.outputPath.eval(v, ctxObj)
	if err != nil {
		return nil, fail(ErrRuntime, "state %q OutputPath: %v", s.name, err)
	}
	return out, nil
}

func (r *run) applyTemplate(s *state, t *template, field string, input any, ctxObj any) (any, *failure) {
	v, err := t.eval(input, ctxObj, r.env)
	if err != nil {
		var te *templateError
		if errors.As(err, &te) {
			return nil, fail(te.name, "state %q %s: %s", s.name, field, te.cause)
		}
		return nil, fail(ErrRuntime, "state %q %s: %v", s.name, field, err)
	}
	return v, nil
}

// finishResult applies ResultSelector, ResultPath and OutputPath to a state's result.
func (r *run) finishResult(s *state, raw, result any, ctxObj any) (any, *failure) {
	if s.resultSelect != nil {
		v, f := r.applyTemplate(s, s.resultSelect, "ResultSelector", result, ctxObj)
		if f != nil {
			return nil, f
		}
		result = v
	}
	combined := result
	switch {
	case s.resultNull:
		combined = raw
	case s.resultPath != nil:
		v, err := setRef(s.resultPath, raw, result)
		if err != nil {
			return nil, fail(ErrResultPathMatchFailure, "state %q: %v", s.name, err)
		}
		combined = v
	}
	return r.outputPath(s, combined, ctxObj)
}

func (r *run) runState(ctx context.Context, s *state, input any, sc *stateCtx) (any, string, *failure) {
	ctxObj := r.contextObj(sc, 0, "", nil)
	switch s.typ {
	case "Pass":
		eff, f := r.inputPath(s, input, ctxObj)
		if f != nil {
			return nil, "", f
		}
		if s.parameters != nil {
			if eff, f = r.applyTemplate(s, s.parameters, "Parameters", eff, ctxObj); f != nil {
				return nil, "", f
			}
		}
		result := eff
		if s.hasResult {
			result = deepCopy(s.result)
		}
		out, f := r.finishResult(s, input, result, ctxObj)
		return out, s.next, f
	case "Succeed":
		eff, f := r.inputPath(s, input, ctxObj)
		if f != nil {
			return nil, "", f
		}
		out, f := r.outputPath(s, eff, ctxObj)
		return out, "", f
	case "Fail":
		return nil, "", r.failState(s, input, ctxObj)
	case "Choice":
		eff, f := r.inputPath(s, input, ctxObj)
		if f != nil {
			return nil, "", f
		}
		next := ""
		for _, rule := range s.choices {
			ok, err := rule.eval(eff, ctxObj)
			if err != nil {
				return nil, "", fail(ErrRuntime, "state %q: %v", s.name, err)
			}
			if ok {
				next = rule.next
				break
			}
		}
		if next == "" {
			if s.deflt == "" {
				return nil, "", fail(ErrNoChoiceMatched, "state %q: no Choice rule matched and there is no Default", s.name)
			}
			next = s.deflt
		}
		out, f := r.outputPath(s, eff, ctxObj)
		return out, next, f
	case "Wait":
		return r.waitState(ctx, s, input, sc, ctxObj)
	}
	return r.withRetry(ctx, s, input, sc)
}

func (r *run) failState(s *state, input, ctxObj any) *failure {
	value := func(lit string, pe *pathExpr, call *intrinsic, field string) (string, *failure) {
		var v any
		switch {
		case pe != nil:
			x, err := pe.eval(input, ctxObj)
			if err != nil {
				return "", fail(ErrRuntime, "state %q %s: %v", s.name, field, err)
			}
			v = x
		case call != nil:
			x, err := call.eval(input, ctxObj, r.env)
			if err != nil {
				return "", fail(ErrIntrinsicFailure, "state %q %s: %v", s.name, field, err)
			}
			v = x
		default:
			return lit, nil
		}
		str, ok := v.(string)
		if !ok {
			return "", fail(ErrRuntime, "state %q %s must select a string, got %s", s.name, field, typeName(v))
		}
		return str, nil
	}
	name, f := value(s.errorStr, s.errorPath, s.errorCall, "ErrorPath")
	if f != nil {
		return f
	}
	cause, f := value(s.cause, s.causePath, s.causeCall, "CausePath")
	if f != nil {
		return f
	}
	return &failure{name: name, cause: cause}
}

func (r *run) waitState(ctx context.Context, s *state, input any, sc *stateCtx, ctxObj any) (any, string, *failure) {
	eff, f := r.inputPath(s, input, ctxObj)
	if f != nil {
		return nil, "", f
	}
	var until time.Time
	if ev := r.recordedWait(sc); ev != nil {
		until = ev.Until
	} else {
		switch {
		case s.hasSeconds:
			until = sc.entered.Add(time.Duration(s.seconds) * time.Second)
		case s.hasTimestamp:
			until = s.timestamp
		case s.secondsPath != nil:
			v, err := s.secondsPath.eval(eff, ctxObj)
			if err != nil {
				return nil, "", fail(ErrRuntime, "state %q SecondsPath: %v", s.name, err)
			}
			n, ok := asInt(v)
			if !ok || n < 0 {
				return nil, "", fail(ErrRuntime, "state %q SecondsPath %s must select a non-negative integer, got %s", s.name, s.secondsPath.src, mustJSON(v))
			}
			until = sc.entered.Add(time.Duration(n) * time.Second)
		case s.timestampPath != nil:
			v, err := s.timestampPath.eval(eff, ctxObj)
			if err != nil {
				return nil, "", fail(ErrRuntime, "state %q TimestampPath: %v", s.name, err)
			}
			str, _ := v.(string)
			t, ok := parseTimestamp(str)
			if !ok {
				return nil, "", fail(ErrRuntime, "state %q TimestampPath %s must select an RFC 3339 timestamp, got %s", s.name, s.timestampPath.src, mustJSON(v))
			}
			until = t
		}
		until = until.UTC()
	}
	if f := r.sleepUntil(ctx, until, Event{Type: WaitStateEntered, Timestamp: sc.entered, Scope: sc.scope, Step: sc.step, State: s.name, Input: mustJSON(input), Until: until}); f != nil {
		return nil, "", f
	}
	out, f := r.outputPath(s, eff, ctxObj)
	return out, s.next, f
}

func (r *run) recordedWait(sc *stateCtx) *Event {
	if r.rp == nil {
		return nil
	}
	return r.rp.waits[visitKey(sc.scope, sc.step)]
}

// sleepUntil records ev and blocks until the given time. The timer is set before the event
// is recorded, so an observer that sees the event knows the execution is waiting on time.
func (r *run) sleepUntil(ctx context.Context, until time.Time, ev Event) *failure {
	d := until.Sub(r.e.opts.Clock.Now())
	var timer <-chan time.Time
	if d > 0 {
		timer = r.e.opts.Clock.After(d)
	}
	if f := r.emitF(ev); f != nil {
		return f
	}
	if d <= 0 {
		return nil
	}
	select {
	case <-timer:
		return nil
	case <-ctx.Done():
		return &failure{name: ErrRuntime, cause: context.Cause(ctx).Error()}
	}
}

// withRetry runs a Task, Parallel or Map state, applying Retry and then Catch.
func (r *run) withRetry(ctx context.Context, s *state, input any, sc *stateCtx) (any, string, *failure) {
	counts := make([]int, len(s.retry))
	for attempt := 0; ; attempt++ {
		var (
			out any
			f   *failure
		)
		switch s.typ {
		case "Task":
			out, f = r.taskAttempt(ctx, s, input, sc, attempt)
		case "Parallel":
			out, f = r.parallelAttempt(ctx, s, input, sc, attempt)
		case "Map":
			out, f = r.mapAttempt(ctx, s, input, sc, attempt)
		}
		if f == nil {
			return out, s.next, nil
		}
		if ctx.Err() != nil {
			return nil, "", f
		}
		idx := -1
		for i, rt := range s.retry {
			if matchError(rt.errorEquals, f) {
				idx = i
				break
			}
		}
		if idx >= 0 && counts[idx] < s.retry[idx].maxAttempts {
			rt := s.retry[idx]
			delay := rt.interval * math.Pow(rt.backoff, float64(counts[idx]))
			if rt.maxDelay > 0 && delay > rt.maxDelay {
				delay = rt.maxDelay
			}
			if rt.fullJitter {
				delay *= float64(r.env.random()>>11) / float64(1<<53)
			}
			counts[idx]++
			until := r.e.opts.Clock.Now().Add(time.Duration(delay * float64(time.Second))).UTC()
			if r.rp != nil {
				if ev := r.rp.retries[attemptKey(sc.scope, sc.step, attempt+1)]; ev != nil {
					until = ev.Until
				}
			}
			if f := r.sleepUntil(ctx, until, Event{Type: RetryScheduled, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt + 1, Error: f.name, Cause: f.cause, Until: until}); f != nil {
				return nil, "", f
			}
			continue
		}
		for _, ct := range s.catch {
			if !matchError(ct.errorEquals, f) {
				continue
			}
			errOut := map[string]any{"Error": f.name, "Cause": f.cause}
			var result any = errOut
			switch {
			case ct.discard:
				result = input
			case ct.resultPath != nil:
				v, err := setRef(ct.resultPath, input, errOut)
				if err != nil {
					return nil, "", fail(ErrResultPathMatchFailure, "state %q Catch ResultPath: %v", s.name, err)
				}
				result = v
			}
			return result, ct.next, nil
		}
		return nil, "", f
	}
}

func decodeTaskValue(v any) (any, *failure) {
	out, err := normalize(v)
	if err != nil {
		return nil, fail(ErrRuntime, "the task returned a value that is not JSON: %v", err)
	}
	return out, nil
}

func (r *run) taskAttempt(ctx context.Context, s *state, input any, sc *stateCtx, attempt int) (any, *failure) {
	rec := r.rp.task(sc.scope, sc.step, attempt)
	token := ""
	if s.waitForToken {
		switch {
		case rec.scheduled != nil && rec.scheduled.Token != "":
			token = rec.scheduled.Token
		default:
			token = randomID(24)
		}
	}
	ctxObj := r.contextObj(sc, attempt, token, nil)
	eff, f := r.inputPath(s, input, ctxObj)
	if f != nil {
		return nil, f
	}
	if s.parameters != nil {
		if eff, f = r.applyTemplate(s, s.parameters, "Parameters", eff, ctxObj); f != nil {
			return nil, f
		}
	}
	timeout, heartbeat := s.timeout, s.heartbeat
	for _, p := range []struct {
		pe  *pathExpr
		dst *int64
		f   string
	}{{s.timeoutPath, &timeout, "TimeoutSecondsPath"}, {s.heartbeatPath, &heartbeat, "HeartbeatSecondsPath"}} {
		if p.pe == nil {
			continue
		}
		// A reference path into the state's input, as the States Language defines it (not
		// into the Parameters built from it).
		v, err := p.pe.eval(input, ctxObj)
		n, ok := asInt(v)
		if err != nil || !ok || n <= 0 {
			return nil, fail(ErrRuntime, "state %q %s %s must select a positive integer", s.name, p.f, p.pe.src)
		}
		*p.dst = n
	}
	spec := r.e.reg[s.resource]
	var result any
	switch {
	case rec.result != nil:
		ev := rec.result
		if ev.Type != TaskSucceeded {
			return nil, &failure{name: ev.Error, cause: ev.Cause}
		}
		v, err := decodeJSON(ev.Output)
		if err != nil {
			return nil, fail(ErrRuntime, "recorded output of task %q is not JSON: %v", s.name, err)
		}
		result = v
	default:
		taskIn := mustJSON(eff)
		if rec.scheduled != nil {
			taskIn = rec.scheduled.Input
		}
		resumeWait := rec.submitted != nil
		if !resumeWait && rec.scheduled != nil && !spec.Idempotent {
			return nil, fail(ErrRuntime, "task state %q (resource %s, attempt %d) was started before the execution was interrupted and its outcome was not recorded; the resource is not registered as idempotent, so Rewind will not run it again. Check whether it took effect, then start a new execution", s.name, s.resource, attempt)
		}
		if f := r.emitF(Event{Type: TaskScheduled, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Resource: s.resource, Input: taskIn, Token: token}); f != nil {
			return nil, f
		}
		v, f := r.invoke(ctx, s, spec, TaskInput{Resource: s.resource, State: s.name, Execution: r.id, Input: taskIn, Token: token},
			time.Duration(timeout)*time.Second, time.Duration(heartbeat)*time.Second, sc, attempt, resumeWait)
		if f != nil {
			typ := TaskFailed
			if f.name == ErrTimeout || f.name == ErrHeartbeatTimeout {
				typ = TaskTimedOut
			}
			if ctx.Err() == nil {
				if hf := r.emitF(Event{Type: typ, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Resource: s.resource, Error: f.name, Cause: f.cause}); hf != nil {
					return nil, hf
				}
			}
			return nil, f
		}
		if f := r.emitF(Event{Type: TaskSucceeded, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Resource: s.resource, Output: mustJSON(v)}); f != nil {
			return nil, f
		}
		result = v
	}
	return r.finishResult(s, input, result, ctxObj)
}

type taskOutcome struct {
	v   any
	err error
}

// invoke runs one task attempt with its timeout and heartbeat timers.
func (r *run) invoke(ctx context.Context, s *state, spec TaskSpec, in TaskInput, timeout, heartbeat time.Duration, sc *stateCtx, attempt int, resumeWait bool) (any, *failure) {
	clock := r.e.opts.Clock
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hb := make(chan struct{}, 1)
	in.Heartbeat = func() {
		select {
		case hb <- struct{}{}:
		default:
		}
	}
	var tokenCh <-chan tokenResult
	if in.Token != "" {
		tw := r.e.registerToken(in.Token)
		defer r.e.unregisterToken(in.Token)
		tokenCh = tw.result
		hb = tw.heartbeat
		in.Heartbeat = func() { _ = r.e.SendTaskHeartbeat(in.Token) }
	}
	var timeoutC, hbC <-chan time.Time
	if timeout > 0 {
		timeoutC = clock.After(timeout)
	}
	if heartbeat > 0 {
		hbC = clock.After(heartbeat)
	}
	var resCh chan taskOutcome
	if !resumeWait {
		if f := r.emitF(Event{Type: TaskStarted, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Resource: s.resource}); f != nil {
			return nil, f
		}
		resCh = make(chan taskOutcome, 1)
		go func() {
			v, err := runTask(tctx, spec.Run, in)
			resCh <- taskOutcome{v, err}
		}()
	}
	fromOutcome := func(o taskOutcome) (any, *failure) {
		if o.err != nil {
			var te *TaskError
			if errors.As(o.err, &te) {
				return nil, &failure{name: te.Name, cause: te.Cause}
			}
			return nil, &failure{name: ErrTaskFailed, cause: o.err.Error()}
		}
		return decodeTaskValue(o.v)
	}
	fromToken := func(t tokenResult) (any, *failure) {
		if t.fail != nil {
			return nil, t.fail
		}
		v, err := decodeJSON(t.output)
		if err != nil {
			return nil, fail(ErrRuntime, "task token output is not JSON: %v", err)
		}
		return v, nil
	}
	// ready prefers a result that arrived together with a timer.
	ready := func() (any, *failure, bool) {
		select {
		case t := <-tokenCh:
			v, f := fromToken(t)
			return v, f, true
		default:
		}
		if in.Token == "" && resCh != nil {
			select {
			case o := <-resCh:
				v, f := fromOutcome(o)
				return v, f, true
			default:
			}
		}
		return nil, nil, false
	}
	for {
		select {
		case o := <-resCh:
			if in.Token == "" || o.err != nil {
				return fromOutcome(o)
			}
			resCh = nil
			if f := r.emitF(Event{Type: TaskSubmitted, Scope: sc.scope, Step: sc.step, State: s.name, Attempt: attempt, Resource: s.resource, Token: in.Token}); f != nil {
				return nil, f
			}
		case t := <-tokenCh:
			return fromToken(t)
		case <-hb:
			if heartbeat > 0 {
				hbC = clock.After(heartbeat)
			}
		case <-hbC:
			if v, f, ok := ready(); ok {
				return v, f
			}
			return nil, fail(ErrHeartbeatTimeout, "state %q sent no heartbeat for %s", s.name, heartbeat)
		case <-timeoutC:
			if v, f, ok := ready(); ok {
				return v, f
			}
			return nil, fail(ErrTimeout, "state %q did not finish within %s", s.name, timeout)
		case <-ctx.Done():
			return nil, &failure{name: ErrRuntime, cause: context.Cause(ctx).Error()}
		}
	}
}

// runTask calls a task, turning a panic into a States.TaskFailed error.
func runTask(ctx context.Context, t Task, in TaskInput) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task panicked: %v", p)
		}
	}()
	return t(ctx, in)
}
