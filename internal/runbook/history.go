package runbook

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// EventType names a history event, following the Step Functions HistoryEventType names.
type EventType string

// History event types. State events are named for the state type (TaskStateEntered,
// PassStateExited, …); see StateEntered and StateExited.
const (
	ExecutionStarted   EventType = "ExecutionStarted"
	ExecutionSucceeded EventType = "ExecutionSucceeded"
	ExecutionFailed    EventType = "ExecutionFailed"
	ExecutionTimedOut  EventType = "ExecutionTimedOut"
	ExecutionAborted   EventType = "ExecutionAborted"

	TaskScheduled EventType = "TaskScheduled"
	TaskStarted   EventType = "TaskStarted"
	TaskSubmitted EventType = "TaskSubmitted" // a .waitForTaskToken task handed out its token
	TaskSucceeded EventType = "TaskSucceeded"
	TaskFailed    EventType = "TaskFailed"
	TaskTimedOut  EventType = "TaskTimedOut"

	MapIterationStarted   EventType = "MapIterationStarted"
	MapIterationSucceeded EventType = "MapIterationSucceeded"
	MapIterationFailed    EventType = "MapIterationFailed"
	ParallelStateFailed   EventType = "ParallelStateFailed"
	MapStateFailed        EventType = "MapStateFailed"
	FailStateEntered      EventType = "FailStateEntered"
	WaitStateEntered      EventType = "WaitStateEntered"
	WaitStateExited       EventType = "WaitStateExited"

	// RetryScheduled records a Retry decision: Attempt is the next attempt and Until the
	// time it starts (Rewind's addition, so a resumed execution keeps the same delay).
	RetryScheduled EventType = "RetryScheduled"
)

// StateEntered returns the entered event type for a state type: "Task" -> TaskStateEntered.
func StateEntered(stateType string) EventType { return EventType(stateType + "StateEntered") }

// StateExited returns the exited event type for a state type: "Task" -> TaskStateExited.
func StateExited(stateType string) EventType { return EventType(stateType + "StateExited") }

func isEntered(t EventType) bool { return len(t) > 12 && string(t[len(t)-12:]) == "StateEntered" }
func isExited(t EventType) bool  { return len(t) > 11 && string(t[len(t)-11:]) == "StateExited" }

// Event is one recorded transition. Scope and Step locate a state visit deterministically:
// Scope is "" at the top level and names the Parallel branch or Map iteration otherwise
// ("Fan@3.0/b1", "Each@2.0/i7"); Step counts the states entered in that scope. Attempt
// numbers a task's retries. Events are what Resume replays.
type Event struct {
	ID        int64           `json:"id"`
	Type      EventType       `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Scope     string          `json:"scope,omitempty"`
	Step      int             `json:"step,omitempty"`
	State     string          `json:"state,omitempty"`
	Attempt   int             `json:"attempt,omitempty"`
	Resource  string          `json:"resource,omitempty"`
	Token     string          `json:"token,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	Next      string          `json:"next,omitempty"`
	Error     string          `json:"error,omitempty"`
	Cause     string          `json:"cause,omitempty"`
	Until     time.Time       `json:"until,omitzero"` // a Wait state's deadline
	Execution string          `json:"execution,omitempty"`
	Name      string          `json:"name,omitempty"`
}

// History receives every event of an execution, in order, before the execution acts on
// it. Record is called from one goroutine at a time per execution. An error from Record
// aborts the execution (it could not be resumed otherwise).
type History interface {
	Record(ev Event) error
}

// MemoryHistory is a History that keeps events in memory. It is safe for concurrent use.
type MemoryHistory struct {
	mu     sync.Mutex
	events []Event
	notify func(Event)
}

// Record appends ev.
func (h *MemoryHistory) Record(ev Event) error {
	h.mu.Lock()
	h.events = append(h.events, ev)
	n := h.notify
	h.mu.Unlock()
	if n != nil {
		n(ev)
	}
	return nil
}

// Events returns a copy of the recorded events.
func (h *MemoryHistory) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// OnRecord sets a function called after each Record (for tests and progress output).
func (h *MemoryHistory) OnRecord(f func(Event)) {
	h.mu.Lock()
	h.notify = f
	h.mu.Unlock()
}

// replay indexes a recorded history for Resume.
type replay struct {
	started *Event
	final   *Event
	entered map[string]*Event // scope#step
	exited  map[string]*Event
	waits   map[string]*Event
	tasks   map[string][]*Event // scope#step.attempt
	retries map[string]*Event   // scope#step.attempt
	other   []*Event
	lastID  int64
}

func visitKey(scope string, step int) string { return fmt.Sprintf("%s#%d", scope, step) }
func attemptKey(scope string, step, attempt int) string {
	return fmt.Sprintf("%s#%d.%d", scope, step, attempt)
}

func newReplay(events []Event) (*replay, error) {
	r := &replay{
		entered: map[string]*Event{}, exited: map[string]*Event{}, waits: map[string]*Event{},
		tasks: map[string][]*Event{}, retries: map[string]*Event{},
	}
	for i := range events {
		ev := &events[i]
		if ev.ID > r.lastID {
			r.lastID = ev.ID
		}
		switch {
		case ev.Type == ExecutionStarted:
			if r.started != nil {
				return nil, fmt.Errorf("history has two ExecutionStarted events (ids %d and %d)", r.started.ID, ev.ID)
			}
			r.started = ev
		case ev.Type == ExecutionSucceeded || ev.Type == ExecutionFailed || ev.Type == ExecutionTimedOut || ev.Type == ExecutionAborted:
			r.final = ev
		case ev.Type == WaitStateEntered:
			r.waits[visitKey(ev.Scope, ev.Step)] = ev
			r.entered[visitKey(ev.Scope, ev.Step)] = ev
		case ev.Type == TaskScheduled || ev.Type == TaskStarted || ev.Type == TaskSubmitted ||
			ev.Type == TaskSucceeded || ev.Type == TaskFailed || ev.Type == TaskTimedOut:
			k := attemptKey(ev.Scope, ev.Step, ev.Attempt)
			r.tasks[k] = append(r.tasks[k], ev)
		case ev.Type == RetryScheduled:
			r.retries[attemptKey(ev.Scope, ev.Step, ev.Attempt)] = ev
		case isEntered(ev.Type):
			r.entered[visitKey(ev.Scope, ev.Step)] = ev
		case isExited(ev.Type):
			r.exited[visitKey(ev.Scope, ev.Step)] = ev
		default:
			r.other = append(r.other, ev)
		}
	}
	if r.started == nil {
		return nil, fmt.Errorf("history has no ExecutionStarted event")
	}
	return r, nil
}

// taskRecord summarizes a recorded task attempt.
type taskRecord struct {
	scheduled, started, submitted, result *Event
}

func (r *replay) task(scope string, step, attempt int) taskRecord {
	var tr taskRecord
	if r == nil {
		return tr
	}
	for _, ev := range r.tasks[attemptKey(scope, step, attempt)] {
		switch ev.Type {
		case TaskScheduled:
			tr.scheduled = ev
		case TaskStarted:
			tr.started = ev
		case TaskSubmitted:
			tr.submitted = ev
		default:
			tr.result = ev
		}
	}
	return tr
}
