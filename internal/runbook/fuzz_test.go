package runbook_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/runbook"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(resumeDef))
	f.Add([]byte(`{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Not":{"Variable":"$.a","IsNull":true},"Next":"D"}]},"D":{"Type":"Succeed"}}}`))
	f.Add([]byte("StartAt: A\nStates:\n  A: &a\n    Type: Pass\n    End: true\n  B: *a\n"))
	f.Add([]byte(`{"StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{"StartAt":"X","States":{"X":{"Type":"Pass","Parameters":{"a.$":"States.Format('{}', $$.Map.Item.Index)"},"End":true}}},"End":true}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := runbook.Parse(data)
		if err != nil {
			return
		}
		if d.Validate() != nil {
			return
		}
		_ = d.Resources()
		// A valid definition without tasks runs to an end without panicking.
		if len(d.Resources()) > 0 {
			return
		}
		e := runbook.NewEngine(nil, runbook.Options{Clock: instantClock{}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		x, err := e.Start(ctx, d, json.RawMessage(`{"a": [1, {"b": "c"}], "n": 3}`), "fuzz")
		if err != nil {
			return
		}
		_, _ = x.Wait(context.Background())
	})
}

// instantClock fires every timer at once.
type instantClock struct{}

func (instantClock) Now() time.Time { return epoch }
func (instantClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- epoch
	return ch
}

func FuzzIntrinsic(f *testing.F) {
	for _, s := range []string{
		"States.Format('a {} b', $.x)", "States.Array(1, 'two', true, null, $['a b'][0])",
		"States.Hash(States.JsonToString($), 'SHA-256')", `States.Format('\'\{\}\\', 1)`,
		"States.MathRandom(1, 10, 5)", "States.StringSplit($.s, ', ')", "States.ArrayRange(1, 3, 1)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if runbook.ParseIntrinsic(src) != nil {
			return
		}
		def := map[string]any{"StartAt": "A", "States": map[string]any{"A": map[string]any{
			"Type": "Pass", "Parameters": map[string]any{"v.$": src}, "End": true}}}
		b, _ := json.Marshal(def)
		d, err := runbook.Parse(b)
		if err != nil {
			t.Fatalf("Parse of a generated definition: %v", err)
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("ParseIntrinsic accepted %q but Validate rejects it: %v", src, err)
		}
		x, err := runbook.NewEngine(nil, runbook.Options{Clock: instantClock{}}).Start(context.Background(), d, json.RawMessage(`{"x": 1, "s": "a,b", "a b": [2]}`), "")
		if err != nil {
			t.Fatal(err)
		}
		res, _ := x.Wait(context.Background())
		if res.Status == runbook.Failed && res.Error != runbook.ErrIntrinsicFailure {
			t.Fatalf("%q failed with %s: %s", src, res.Error, res.Cause)
		}
	})
}
