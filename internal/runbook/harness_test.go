package runbook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/runbook"
)

// fakeClock is a manual clock: timers fire only when the test driver advances time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// advance moves time to the earliest pending timer and fires every due timer. It
// reports whether there was a timer.
func (c *fakeClock) advance() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return false
	}
	sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	if c.timers[0].at.After(c.now) {
		c.now = c.timers[0].at
	}
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		keep = append(keep, t)
	}
	c.timers = keep
	return true
}

// harness runs executions with a fake clock and a registry of test tasks.
type harness struct {
	clock   *fakeClock
	hist    *runbook.MemoryHistory
	engine  *runbook.Engine
	busy    atomic.Int64 // tasks scheduled and not finished, by the history (not blocked on time)
	running atomic.Int64 // test task functions executing right now
	events  atomic.Int64
	mu      sync.Mutex
	calls   map[string]int // invocations per state
	failCnt map[string]int
}

func newHarness(t testing.TB, start time.Time) *harness {
	h := &harness{clock: newFakeClock(start), hist: &runbook.MemoryHistory{}, calls: map[string]int{}, failCnt: map[string]int{}}
	h.hist.OnRecord(func(ev runbook.Event) {
		h.events.Add(1)
		switch ev.Type {
		case runbook.TaskScheduled:
			h.busy.Add(1)
		case runbook.TaskSubmitted, runbook.TaskSucceeded, runbook.TaskFailed, runbook.TaskTimedOut:
			h.busy.Add(-1)
		}
	})
	seq := uint64(0)
	h.engine = runbook.NewEngine(h.registry(), runbook.Options{
		Clock: h.clock, History: h.hist,
		Rand: func() uint64 { seq++; return seq * 0x9e3779b97f4a7c15 },
	})
	return h
}

func (h *harness) count(state string) {
	h.mu.Lock()
	h.calls[state]++
	h.mu.Unlock()
}

func decodeInput(in runbook.TaskInput) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(in.Input, &m)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// registry returns the test tasks, each counted in h.running while its function runs.
func (h *harness) registry() runbook.Registry {
	reg := h.tasks()
	for name, spec := range reg {
		run := spec.Run
		spec.Run = func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.running.Add(1)
			defer h.running.Add(-1)
			return run(ctx, in)
		}
		reg[name] = spec
	}
	return reg
}

func (h *harness) tasks() runbook.Registry {
	return runbook.Registry{
		// test:echo returns its input.
		"test:echo": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.count(in.State)
			return in.Input, nil
		}},
		// test:idempotent is test:echo registered as idempotent.
		"test:idempotent": {Idempotent: true, Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.count(in.State)
			return in.Input, nil
		}},
		// test:fail fails with {error, cause} the first "times" calls (always if absent),
		// then returns its input. A plain error (no "error" field) is States.TaskFailed.
		"test:fail": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.count(in.State)
			m := decodeInput(in)
			h.mu.Lock()
			h.failCnt[in.State]++
			n := h.failCnt[in.State]
			h.mu.Unlock()
			if times, ok := m["times"].(float64); ok && float64(n) > times {
				return in.Input, nil
			}
			name, _ := m["error"].(string)
			cause, _ := m["cause"].(string)
			if name == "" {
				return nil, errors.New(cause)
			}
			return nil, &runbook.TaskError{Name: name, Cause: cause}
		}},
		// test:sleep blocks until canceled (timeout, heartbeat timeout or abort); with
		// "heartbeats": n it first sends n heartbeats one fake second apart.
		"test:sleep": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.count(in.State)
			m := decodeInput(in)
			h.busy.Add(-1)
			defer h.busy.Add(1)
			if n, ok := m["heartbeats"].(float64); ok {
				for i := 0; i < int(n); i++ {
					select {
					case <-h.clock.After(time.Second):
						in.Heartbeat()
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return map[string]any{"beats": n}, nil
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		// test:token hands its token back at once: {"succeed": value}, {"fail": {error,
		// cause}}, or nothing (never completes).
		"test:token": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.count(in.State)
			m := decodeInput(in)
			if in.Token == "" {
				return nil, errors.New("no token")
			}
			if v, ok := m["succeed"]; ok {
				b, _ := json.Marshal(v)
				return nil, h.engine.SendTaskSuccess(in.Token, b)
			}
			if f, ok := m["fail"].(map[string]any); ok {
				e, _ := f["error"].(string)
				c, _ := f["cause"].(string)
				return nil, h.engine.SendTaskFailure(in.Token, e, c)
			}
			if _, ok := m["heartbeat"]; ok {
				if err := h.engine.SendTaskHeartbeat(in.Token); err != nil {
					return nil, err
				}
			}
			return "ignored", nil
		}},
		// test:panic panics.
		"test:panic": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
			h.count(in.State)
			panic("boom")
		}},
	}
}

// drive waits for x, advancing the fake clock whenever no task is running and the
// execution has made no progress since the last look. A task of a Parallel branch canceled
// because another branch failed ends without a history event, so the history count may
// stay above zero: when no task function is executing at all, a longer quiet spell also
// lets the clock move.
func (h *harness) drive(t testing.TB, x *runbook.Execution) runbook.Result {
	t.Helper()
	done := make(chan runbook.Result, 1)
	go func() {
		r, _ := x.Wait(context.Background())
		done <- r
	}()
	deadline := time.After(20 * time.Second)
	last := int64(-1)
	stable, quiet := 0, 0
	for {
		select {
		case r := <-done:
			return r
		case <-deadline:
			x.Stop()
			t.Fatalf("execution did not finish; history:\n%s", dumpHistory(h.hist.Events()))
		case <-time.After(200 * time.Microsecond):
		}
		n := h.events.Load()
		if n == last && h.busy.Load() <= 0 {
			stable++
		} else {
			stable = 0
		}
		if stable >= 5 || (n == last && h.running.Load() == 0 && quiet >= 50) {
			h.clock.advance()
			stable, quiet = 0, 0
		}
		if n == last {
			quiet++
		} else {
			quiet = 0
		}
		last = n
	}
}

func dumpHistory(evs []runbook.Event) string {
	s := ""
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		s += fmt.Sprintln(string(b))
	}
	return s
}
