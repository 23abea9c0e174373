package runbook_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

func TestStartRejects(t *testing.T) {
	h := newHarness(t, epoch)
	ctx := context.Background()
	unknown := parse(t, `{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "rewind:nope", "End": true}}}`)
	_, err := h.engine.Start(ctx, unknown, nil, "")
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "rewind:nope") || !strings.Contains(errs.HintOf(err), "test:echo") {
		t.Errorf("unknown resource: %v (hint %q)", err, errs.HintOf(err))
	}
	ok := parse(t, `{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}`)
	if _, err := h.engine.Start(ctx, ok, json.RawMessage(`{"a":`), ""); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad input: %v", err)
	}
	bad, err := runbook.Parse([]byte(`{"StartAt": "A", "States": {"A": {"Type": "Pass"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.engine.Start(ctx, bad, nil, "")
	var ve *runbook.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Where != "States.A" {
		t.Errorf("invalid definition: %v", err)
	}
}

func TestParseRejectsNonObjects(t *testing.T) {
	for _, src := range []string{``, `[1]`, `{"a":`, "- a\n- b\n", "key: [unclosed\n", `"text"`} {
		if _, err := runbook.Parse([]byte(src)); !errs.Is(err, errs.Invalid) {
			t.Errorf("Parse(%q) = %v, want invalid", src, err)
		}
	}
}

func TestValidateListsAllProblems(t *testing.T) {
	d, err := runbook.Parse([]byte(`{"StartAt": "A", "States": {
		"A": {"Type": "Pass", "Next": "Missing"},
		"B": {"Type": "Wait", "End": true},
		"C": {"Type": "Task", "Resource": "x", "Retry": "no", "End": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var ve *runbook.ValidationError
	if err := d.Validate(); !errors.As(err, &ve) {
		t.Fatalf("Validate: %v", err)
	}
	got := map[string]bool{}
	for _, p := range ve.Problems {
		got[p.Where] = true
	}
	for _, want := range []string{"States.A.Next", "States.B", "States.C.Retry"} {
		if !got[want] {
			t.Errorf("no problem reported at %s: %v", want, ve)
		}
	}
}

func TestStopAndCancelAbort(t *testing.T) {
	def := parse(t, `{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}`)
	h := newHarness(t, epoch)
	x, err := h.engine.Start(context.Background(), def, nil, "stop-me")
	if err != nil {
		t.Fatal(err)
	}
	x.Stop()
	x.Stop()
	res, err := x.Wait(context.Background())
	if err != nil || res.Status != runbook.Aborted {
		t.Fatalf("Stop: %+v %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x, err = h.engine.Start(ctx, def, nil, "cancel-me")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	res, _ = x.Wait(context.Background())
	if res.Status != runbook.Aborted || !strings.Contains(res.Cause, "canceled") {
		t.Fatalf("cancel: %+v", res)
	}
	evs := h.hist.Events()
	if evs[len(evs)-1].Type != runbook.ExecutionAborted {
		t.Errorf("last event %s, want ExecutionAborted", evs[len(evs)-1].Type)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wcancel()
	x, _ = h.engine.Start(context.Background(), def, nil, "")
	defer x.Stop()
	if _, err := x.Wait(wctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with canceled ctx: %v", err)
	}
}

func TestTaskTokenAPIErrors(t *testing.T) {
	e := runbook.NewEngine(nil, runbook.Options{})
	if err := e.SendTaskSuccess("nope", json.RawMessage(`{}`)); !errs.Is(err, errs.NotFound) {
		t.Errorf("SendTaskSuccess unknown token: %v", err)
	}
	if err := e.SendTaskFailure("nope", "E", "c"); !errs.Is(err, errs.NotFound) {
		t.Errorf("SendTaskFailure unknown token: %v", err)
	}
	if err := e.SendTaskHeartbeat("nope"); !errs.Is(err, errs.NotFound) {
		t.Errorf("SendTaskHeartbeat unknown token: %v", err)
	}
	if err := e.SendTaskSuccess("nope", json.RawMessage(`{`)); !errs.Is(err, errs.Invalid) {
		t.Errorf("SendTaskSuccess bad JSON: %v", err)
	}
}

type failingHistory struct{ n int }

func (f *failingHistory) Record(runbook.Event) error {
	f.n++
	if f.n > 2 {
		return errors.New("disk full")
	}
	return nil
}

func TestHistoryFailureFailsExecution(t *testing.T) {
	def := parse(t, `{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": true}}}`)
	e := runbook.NewEngine(nil, runbook.Options{History: &failingHistory{}})
	x, err := e.Start(context.Background(), def, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	res, _ := x.Wait(context.Background())
	if res.Status != runbook.Failed || res.Error != runbook.ErrRuntime || !strings.Contains(res.Cause, "disk full") {
		t.Fatalf("%+v", res)
	}
}

func TestSystemClockExecution(t *testing.T) {
	def := parse(t, `{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 0, "Next": "T"}, "T": {"Type": "Task", "Resource": "echo", "End": true}}}`)
	reg := runbook.Registry{"echo": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) {
		return map[string]any{"got": json.RawMessage(in.Input), "state": in.State}, nil
	}}}
	x, err := runbook.NewEngine(reg, runbook.Options{}).Start(context.Background(), def, json.RawMessage(`{"n": 12345678901234567890}`), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := x.Wait(ctx)
	if err != nil || res.Status != runbook.Succeeded {
		t.Fatalf("%+v %v", res, err)
	}
	if string(res.Output) != `{"got":{"n":12345678901234567890},"state":"T"}` {
		t.Errorf("output %s (large integers must survive)", res.Output)
	}
}

func TestResources(t *testing.T) {
	def := parse(t, `{"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
		{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "rewind:exec", "End": true}}},
		{"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "rewind:http.waitForTaskToken", "End": true}}}, "End": true}}}
	], "End": true}}}`)
	if got := strings.Join(def.Resources(), ","); got != "rewind:exec,rewind:http" {
		t.Errorf("Resources = %s", got)
	}
}
