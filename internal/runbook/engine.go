package runbook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Clock is the engine's source of time. Tests inject a fake so that Wait states, retries
// and timeouts never sleep.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// TaskInput is what a Task receives.
type TaskInput struct {
	// Resource is the state's Resource without the .waitForTaskToken suffix.
	Resource string
	// State names the Task state.
	State string
	// Execution is the execution's ID.
	Execution string
	// Input is the state's effective input, after InputPath and Parameters.
	Input json.RawMessage
	// Token is set for .waitForTaskToken resources: the task must hand it to whoever will
	// call Engine.SendTaskSuccess or SendTaskFailure, and then return.
	Token string
	// Heartbeat resets the state's HeartbeatSeconds timer. Safe for concurrent use.
	Heartbeat func()
}

// Task runs one task invocation. It returns a JSON-compatible value (json.RawMessage, a
// map, a struct, …) or an error; a *TaskError names the error, any other error becomes
// States.TaskFailed. A Task must return when ctx is canceled (timeout or abort).
type Task func(ctx context.Context, in TaskInput) (any, error)

// TaskSpec registers a Task. Idempotent tasks may be run again when an execution is
// resumed after an interruption that left the task's outcome unknown; others fail the
// execution with States.Runtime rather than run twice.
type TaskSpec struct {
	Run        Task
	Idempotent bool
}

// Registry maps a Resource name (such as "rewind:exec") to its Task.
type Registry map[string]TaskSpec

// Options configure an Engine. The zero value is usable: wall clock, no history,
// crypto/rand randomness.
type Options struct {
	Clock   Clock
	History History
	// Rand returns random numbers for States.MathRandom, States.UUID and retry jitter.
	// Nil uses crypto/rand.
	Rand func() uint64
}

// Status is an execution's status.
type Status string

// Execution statuses.
const (
	Running   Status = "RUNNING"
	Succeeded Status = "SUCCEEDED"
	Failed    Status = "FAILED"
	TimedOut  Status = "TIMED_OUT"
	Aborted   Status = "ABORTED"
)

// Result is a finished execution's outcome: Output on success, Error and Cause otherwise.
type Result struct {
	Status Status
	Output json.RawMessage
	Error  string
	Cause  string
}

// Engine runs executions. It is safe for concurrent use.
type Engine struct {
	reg  Registry
	opts Options

	mu     sync.Mutex
	tokens map[string]*tokenWait
}

type tokenResult struct {
	output json.RawMessage
	fail   *failure
}

type tokenWait struct {
	result    chan tokenResult
	heartbeat chan struct{}
}

// NewEngine returns an engine running tasks from reg.
func NewEngine(reg Registry, opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	return &Engine{reg: reg, opts: opts, tokens: map[string]*tokenWait{}}
}

// Execution is a running or finished execution.
type Execution struct {
	ID   string
	Name string

	done   chan struct{}
	result Result
	stop   context.CancelCauseFunc
}

// Wait blocks until the execution finishes or ctx is done. The error is ctx's error.
func (x *Execution) Wait(ctx context.Context) (Result, error) {
	select {
	case <-x.done:
		return x.result, nil
	case <-ctx.Done():
		return Result{Status: Running}, ctx.Err()
	}
}

// Stop aborts the execution; Wait then reports ABORTED. Safe to call more than once.
func (x *Execution) Stop() {
	if x.stop != nil {
		x.stop(errAborted)
	}
}

var (
	errAborted  = fmt.Errorf("the execution was stopped")
	errTimedOut = fmt.Errorf("the execution exceeded its TimeoutSeconds")
)

// executionID is 32 hex digits: the start time in nanoseconds, then 8 random bytes, so
// that IDs sort by start time (listings page newest first by ID).
func executionID(now time.Time) string {
	return fmt.Sprintf("%016x", uint64(now.UnixNano())) + randomID(8)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *Engine) check(op string, def *Definition) error {
	if def == nil {
		return errs.Errorf(op, errs.Invalid, "no definition")
	}
	if err := def.Validate(); err != nil {
		return err
	}
	var missing []string
	for _, r := range def.Resources() {
		if spec, ok := e.reg[r]; !ok || spec.Run == nil {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		known := make([]string, 0, len(e.reg))
		for k := range e.reg {
			known = append(known, k)
		}
		return errs.Errorf(op, errs.Invalid, "the definition uses unknown task resource(s): %s", strings.Join(missing, ", ")).
			WithHint("available resources: " + strings.Join(sortedCopy(known), ", "))
	}
	return nil
}

// Start validates def and starts an execution with input (empty means {}). name is the
// execution's name (empty: its ID). The execution runs until it finishes, Stop is called or
// ctx is canceled (which aborts it). Errors: errs.Invalid for an invalid definition, an
// unknown task resource or input that is not JSON.
func (e *Engine) Start(ctx context.Context, def *Definition, input json.RawMessage, name string) (*Execution, error) {
	const op = "runbook.Start"
	if err := e.check(op, def); err != nil {
		return nil, err
	}
	var in any = map[string]any{}
	if len(strings.TrimSpace(string(input))) > 0 {
		v, err := decodeJSON(input)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("the execution input is not valid JSON: %w", err))
		}
		in = v
	}
	id := executionID(e.opts.Clock.Now())
	if name == "" {
		name = id
	}
	if len(name) > 80 {
		return nil, errs.Errorf(op, errs.Invalid, "execution name %q is longer than 80 characters", name)
	}
	r := e.newRun(def, id, name, in, e.opts.Clock.Now().UTC(), nil, 0)
	return r.launch(ctx, true), nil
}

// Resume continues an execution from its recorded history (the events a History received,
// in order). Completed states and task results are replayed, not re-run; a Wait resumes
// with its original deadline; a .waitForTaskToken task that had handed out its token waits
// for it again. A task that started but has no recorded result is run again only if its
// TaskSpec is Idempotent; otherwise the execution fails with States.Runtime. New events go
// to the engine's History, numbered after the last recorded one. If the history already
// ends the execution, Resume returns an Execution that is already finished.
func (e *Engine) Resume(ctx context.Context, def *Definition, history []Event) (*Execution, error) {
	const op = "runbook.Resume"
	if err := e.check(op, def); err != nil {
		return nil, err
	}
	rp, err := newReplay(history)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, err).WithHint("pass the complete history of one execution, starting with ExecutionStarted")
	}
	st := rp.started
	if rp.final != nil {
		x := &Execution{ID: st.Execution, Name: st.Name, done: make(chan struct{})}
		x.result = resultFromEvent(rp.final)
		close(x.done)
		return x, nil
	}
	in, err := decodeJSON(st.Input)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("ExecutionStarted input: %w", err))
	}
	r := e.newRun(def, st.Execution, st.Name, in, st.Timestamp.UTC(), rp, rp.lastID)
	return r.launch(ctx, false), nil
}

func resultFromEvent(ev *Event) Result {
	switch ev.Type {
	case ExecutionSucceeded:
		return Result{Status: Succeeded, Output: ev.Output}
	case ExecutionTimedOut:
		return Result{Status: TimedOut, Error: ev.Error, Cause: ev.Cause}
	case ExecutionAborted:
		return Result{Status: Aborted, Error: ev.Error, Cause: ev.Cause}
	}
	return Result{Status: Failed, Error: ev.Error, Cause: ev.Cause}
}

// SendTaskSuccess completes the .waitForTaskToken task holding token with output.
// Errors: errs.NotFound if no task waits for token, errs.Invalid if output is not JSON.
func (e *Engine) SendTaskSuccess(token string, output json.RawMessage) error {
	const op = "runbook.SendTaskSuccess"
	if len(strings.TrimSpace(string(output))) == 0 {
		output = json.RawMessage("{}")
	}
	if _, err := decodeJSON(output); err != nil {
		return errs.E(op, errs.Invalid, fmt.Errorf("task output is not valid JSON: %w", err))
	}
	return e.deliver(op, token, tokenResult{output: output})
}

// SendTaskFailure fails the .waitForTaskToken task holding token with a named error.
// Errors: errs.NotFound if no task waits for token.
func (e *Engine) SendTaskFailure(token, errorName, cause string) error {
	return e.deliver("runbook.SendTaskFailure", token, tokenResult{fail: &failure{name: errorName, cause: cause}})
}

// SendTaskHeartbeat resets the heartbeat timer of the task holding token.
// Errors: errs.NotFound if no task waits for token.
func (e *Engine) SendTaskHeartbeat(token string) error {
	e.mu.Lock()
	tw := e.tokens[token]
	e.mu.Unlock()
	if tw == nil {
		return errs.Errorf("runbook.SendTaskHeartbeat", errs.NotFound, "no task is waiting for this token")
	}
	select {
	case tw.heartbeat <- struct{}{}:
	default:
	}
	return nil
}

func (e *Engine) deliver(op, token string, res tokenResult) error {
	e.mu.Lock()
	tw := e.tokens[token]
	if tw != nil {
		delete(e.tokens, token)
	}
	e.mu.Unlock()
	if tw == nil {
		return errs.Errorf(op, errs.NotFound, "no task is waiting for this token").
			WithHint("the task may have finished, timed out, or the token is mistyped")
	}
	tw.result <- res
	return nil
}

func (e *Engine) registerToken(token string) *tokenWait {
	tw := &tokenWait{result: make(chan tokenResult, 1), heartbeat: make(chan struct{}, 1)}
	e.mu.Lock()
	e.tokens[token] = tw
	e.mu.Unlock()
	return tw
}

func (e *Engine) unregisterToken(token string) {
	e.mu.Lock()
	delete(e.tokens, token)
	e.mu.Unlock()
}
