package runbook_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// conformanceCase is one entry of testdata/conformance/*.json.
type conformanceCase struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition"`
	YAML       string          `json:"yaml"`
	Input      json.RawMessage `json:"input"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output"`
	Error      *string         `json:"error"`
	Cause      *string         `json:"cause"`
	CauseHas   string          `json:"causeContains"`
	Invalid    []string        `json:"invalid"`
	Calls      map[string]int  `json:"calls"`
	Elapsed    *float64        `json:"elapsed"` // fake seconds from start to finish
	Start      string          `json:"start"`   // fake clock start, RFC 3339
}

func TestConformance(t *testing.T) {
	files, err := filepath.Glob("testdata/conformance/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance files: %v", err)
	}
	total := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var suite struct {
			Cases []conformanceCase `json:"cases"`
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&suite); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range suite.Cases {
			total++
			t.Run(strings.TrimSuffix(filepath.Base(file), ".json")+"/"+c.Name, func(t *testing.T) {
				runCase(t, c)
			})
		}
	}
	if total < 100 {
		t.Errorf("only %d conformance cases", total)
	}
}

func runCase(t *testing.T, c conformanceCase) {
	src := []byte(c.Definition)
	if c.YAML != "" {
		src = []byte(c.YAML)
	}
	def, err := runbook.Parse(src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	verr := def.Validate()
	if len(c.Invalid) > 0 {
		if verr == nil {
			t.Fatalf("Validate succeeded, want problems %q", c.Invalid)
		}
		if !errs.Is(verr, errs.Invalid) {
			t.Errorf("Validate error kind = %v, want invalid", errs.KindOf(verr))
		}
		for _, want := range c.Invalid {
			if !strings.Contains(verr.Error(), want) {
				t.Errorf("Validate error lacks %q:\n%v", want, verr)
			}
		}
		return
	}
	if verr != nil {
		t.Fatalf("Validate: %v", verr)
	}
	start := epoch
	if c.Start != "" {
		if start, err = time.Parse(time.RFC3339, c.Start); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, start)
	x, err := h.engine.Start(context.Background(), def, c.Input, "conformance")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	res := h.drive(t, x)
	wantStatus := c.Status
	if wantStatus == "" {
		wantStatus = "SUCCEEDED"
		if c.Error != nil {
			wantStatus = "FAILED"
		}
	}
	if string(res.Status) != wantStatus {
		t.Fatalf("status %s (error %q cause %q output %s), want %s\nhistory:\n%s", res.Status, res.Error, res.Cause, res.Output, wantStatus, dumpHistory(h.hist.Events()))
	}
	if c.Output != nil {
		if !sameJSON(t, res.Output, c.Output) {
			t.Errorf("output\n got %s\nwant %s", res.Output, c.Output)
		}
	}
	if c.Error != nil && res.Error != *c.Error {
		t.Errorf("error %q (cause %q), want %q", res.Error, res.Cause, *c.Error)
	}
	if c.Cause != nil && res.Cause != *c.Cause {
		t.Errorf("cause %q, want %q", res.Cause, *c.Cause)
	}
	if c.CauseHas != "" && !strings.Contains(res.Cause, c.CauseHas) {
		t.Errorf("cause %q lacks %q", res.Cause, c.CauseHas)
	}
	for state, n := range c.Calls {
		h.mu.Lock()
		got := h.calls[state]
		h.mu.Unlock()
		if got != n {
			t.Errorf("state %s ran %d times, want %d", state, got, n)
		}
	}
	if c.Elapsed != nil {
		got := h.clock.Now().Sub(start).Seconds()
		if got != *c.Elapsed {
			t.Errorf("fake time elapsed %vs, want %vs", got, *c.Elapsed)
		}
	}
	evs := h.hist.Events()
	if len(evs) == 0 || evs[0].Type != runbook.ExecutionStarted {
		t.Errorf("history does not start with ExecutionStarted")
	}
	for i, ev := range evs {
		if ev.ID != int64(i+1) {
			t.Fatalf("event %d has id %d", i, ev.ID)
		}
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
