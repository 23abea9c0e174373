package runbook_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

const resumeDef = `{
  "StartAt": "Init",
  "States": {
    "Init": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()", "items": [1, 2, 3]}, "Next": "Backup"},
    "Backup": {"Type": "Task", "Resource": "RESOURCE", "ResultPath": "$.backup", "Next": "Pause"},
    "Pause": {"Type": "Wait", "Seconds": 60, "Next": "Each"},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ResultPath": "$.each",
      "ItemProcessor": {"StartAt": "Item", "States": {
        "Item": {"Type": "Task", "Resource": "test:idempotent", "Retry": [{"ErrorEquals": ["States.ALL"]}], "End": true}}},
      "Next": "Flaky"},
    "Flaky": {"Type": "Task", "Resource": "test:fail", "Parameters": {"error": "Flaky", "times": 1}, "ResultPath": "$.flaky",
      "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 30}], "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}`

func parse(t testing.TB, src string) *runbook.Definition {
	t.Helper()
	d, err := runbook.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return d
}

func runFull(t *testing.T, def *runbook.Definition) (runbook.Result, []runbook.Event, *harness) {
	t.Helper()
	h := newHarness(t, epoch)
	x, err := h.engine.Start(context.Background(), def, json.RawMessage(`{}`), "resume")
	if err != nil {
		t.Fatal(err)
	}
	res := h.drive(t, x)
	if res.Status != runbook.Succeeded {
		t.Fatalf("full run: %+v", res)
	}
	return res, h.hist.Events(), h
}

func TestResumeFromEveryPrefix(t *testing.T) {
	for _, resource := range []string{"test:echo", "test:idempotent"} {
		t.Run(resource, func(t *testing.T) {
			def := parse(t, strings.Replace(resumeDef, "RESOURCE", resource, 1))
			full, events, _ := runFull(t, def)
			totals := map[string]int{"Backup": 1, "Item": 3, "Flaky": 2}
			for cut := 1; cut < len(events); cut++ {
				prefix := append([]runbook.Event(nil), events[:cut]...)
				last := prefix[len(prefix)-1]
				done := map[string]int{}
				started := map[string]bool{}
				for _, ev := range prefix {
					switch ev.Type {
					case runbook.TaskSucceeded, runbook.TaskFailed:
						done[ev.State]++
						delete(started, ev.Scope+ev.State)
					case runbook.TaskScheduled:
						started[ev.Scope+ev.State] = true
					}
				}
				h := newHarness(t, last.Timestamp)
				// test:fail counts its calls; carry over the failures already recorded.
				for _, ev := range prefix {
					if ev.Type == runbook.TaskFailed {
						h.failCnt[ev.State]++
					}
				}
				x, err := h.engine.Resume(context.Background(), def, prefix)
				if err != nil {
					t.Fatalf("cut %d: Resume: %v", cut, err)
				}
				res := h.drive(t, x)
				// A non-idempotent task whose outcome is unknown must not run again.
				unsafe := ""
				if started["Backup"] && resource == "test:echo" {
					unsafe = "Backup"
				}
				if started["Flaky"] {
					unsafe = "Flaky"
				}
				if unsafe != "" {
					if res.Status != runbook.Failed || res.Error != runbook.ErrRuntime || !strings.Contains(res.Cause, "not registered as idempotent") {
						t.Fatalf("cut %d after %s: got %+v, want States.Runtime refusing to re-run", cut, last.Type, res)
					}
					if h.calls[unsafe] != 0 {
						t.Fatalf("cut %d: non-idempotent %s ran again", cut, unsafe)
					}
					continue
				}
				if res.Status != runbook.Succeeded || string(res.Output) != string(full.Output) {
					t.Fatalf("cut %d after %s: got %+v %s, want %s\nprefix:\n%s\nresumed:\n%s", cut, last.Type, res, res.Output, full.Output,
						dumpHistory(prefix), dumpHistory(h.hist.Events()))
				}
				for state, total := range totals {
					if got, want := h.calls[state], total-done[state]; got != want {
						t.Errorf("cut %d after %s: %s ran %d times on resume, want %d (completed before: %d)", cut, last.Type, state, got, want, done[state])
					}
				}
				resumed := h.hist.Events()
				if len(resumed) == 0 || resumed[0].ID != last.ID+1 {
					t.Fatalf("cut %d: resumed history should continue at id %d: %s", cut, last.ID+1, dumpHistory(resumed))
				}
				for _, ev := range resumed {
					if ev.Type == runbook.ExecutionStarted {
						t.Fatalf("cut %d: resumed history repeats ExecutionStarted", cut)
					}
				}
			}
		})
	}
}

func TestResumeMidWaitKeepsDeadline(t *testing.T) {
	def := parse(t, strings.Replace(resumeDef, "RESOURCE", "test:echo", 1))
	_, events, _ := runFull(t, def)
	cut := -1
	var until time.Time
	for i, ev := range events {
		if ev.Type == runbook.WaitStateEntered {
			cut, until = i+1, ev.Until
		}
	}
	if cut < 0 || !until.Equal(epoch.Add(60*time.Second)) {
		t.Fatalf("WaitStateEntered: cut %d until %v", cut, until)
	}
	// The process restarts 45 seconds into the 60-second wait.
	h := newHarness(t, epoch.Add(45*time.Second))
	x, err := h.engine.Resume(context.Background(), def, events[:cut])
	if err != nil {
		t.Fatal(err)
	}
	if res := h.drive(t, x); res.Status != runbook.Succeeded {
		t.Fatalf("%+v", res)
	}
	for _, ev := range h.hist.Events() {
		if ev.Type == runbook.StateExited("Wait") {
			if !ev.Timestamp.Equal(until) {
				t.Errorf("wait ended at %v, want the recorded deadline %v", ev.Timestamp, until)
			}
			return
		}
	}
	t.Fatal("no WaitStateExited after resume")
}

func TestResumeWaitsForTaskToken(t *testing.T) {
	def := parse(t, `{"StartAt": "Approve", "States": {"Approve": {"Type": "Task", "Resource": "test:token.waitForTaskToken", "Parameters": {"ask": "ops"}, "End": true}}}`)
	h := newHarness(t, epoch)
	x, err := h.engine.Start(context.Background(), def, nil, "approval")
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the token to be handed out, then "crash".
	var token string
	for deadline := time.Now().Add(10 * time.Second); token == "" && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, ev := range h.hist.Events() {
			if ev.Type == runbook.TaskSubmitted {
				token = ev.Token
			}
		}
	}
	if token == "" {
		t.Fatal("no TaskSubmitted event")
	}
	x.Stop()
	if res, _ := x.Wait(context.Background()); res.Status != runbook.Aborted {
		t.Fatalf("stopped execution: %+v", res)
	}
	events := h.hist.Events()
	events = events[:len(events)-1] // drop ExecutionAborted: the process died instead

	h2 := newHarness(t, epoch.Add(time.Hour))
	x2, err := h2.engine.Resume(context.Background(), def, events)
	if err != nil {
		t.Fatal(err)
	}
	var sendErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if sendErr = h2.engine.SendTaskSuccess(token, json.RawMessage(`{"approved":true}`)); sendErr == nil {
			break
		}
	}
	if sendErr != nil {
		t.Fatalf("SendTaskSuccess after resume: %v", sendErr)
	}
	res := h2.drive(t, x2)
	if res.Status != runbook.Succeeded || string(res.Output) != `{"approved":true}` {
		t.Fatalf("%+v %s", res, res.Output)
	}
	if h2.calls["Approve"] != 0 {
		t.Errorf("the callback task ran again on resume")
	}
}

func TestResumeFinishedAndBadHistory(t *testing.T) {
	def := parse(t, strings.Replace(resumeDef, "RESOURCE", "test:echo", 1))
	full, events, _ := runFull(t, def)
	h := newHarness(t, epoch)
	x, err := h.engine.Resume(context.Background(), def, events)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := x.Wait(context.Background())
	if res.Status != runbook.Succeeded || string(res.Output) != string(full.Output) {
		t.Fatalf("finished history: %+v", res)
	}
	if len(h.hist.Events()) != 0 {
		t.Errorf("resuming a finished execution recorded events")
	}
	if _, err := h.engine.Resume(context.Background(), def, events[1:]); !errs.Is(err, errs.Corrupt) {
		t.Errorf("history without ExecutionStarted: %v", err)
	}
	other := parse(t, `{"StartAt": "Other", "States": {"Other": {"Type": "Pass", "Next": "Backup"}, "Backup": {"Type": "Pass", "End": true}}}`)
	x, err = h.engine.Resume(context.Background(), other, events[:4])
	if err != nil {
		t.Fatal(err)
	}
	res = h.drive(t, x)
	if res.Status != runbook.Failed || !strings.Contains(res.Cause, "does not match the definition") {
		t.Fatalf("mismatched definition: %+v", res)
	}
}
