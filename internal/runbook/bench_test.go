package runbook_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/runbook"
)

func BenchmarkParseValidate(b *testing.B) {
	src := []byte(strings.Replace(resumeDef, "RESOURCE", "test:echo", 1))
	for b.Loop() {
		d, err := runbook.Parse(src)
		if err != nil || d.Validate() != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecution runs Pass, Choice, a 100-item Map of tasks and intrinsics.
func BenchmarkExecution(b *testing.B) {
	def := parse(b, `{"StartAt": "Init", "States": {
		"Init": {"Type": "Pass", "Parameters": {"items.$": "States.ArrayRange(1, 100, 1)"}, "Next": "C"},
		"C": {"Type": "Choice", "Choices": [{"Variable": "$.items[0]", "NumericEquals": 1, "Next": "M"}]},
		"M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 8, "ItemSelector": {"n.$": "$$.Map.Item.Value"},
		      "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "echo", "ResultSelector": {"s.$": "States.Format('item {}', $.n)"}, "End": true}}},
		      "ResultSelector": {"n.$": "States.ArrayLength($)"}, "End": true}}}`)
	reg := runbook.Registry{"echo": {Run: func(ctx context.Context, in runbook.TaskInput) (any, error) { return in.Input, nil }}}
	e := runbook.NewEngine(reg, runbook.Options{History: discardHistory{}})
	for b.Loop() {
		x, err := e.Start(context.Background(), def, json.RawMessage(`{}`), "")
		if err != nil {
			b.Fatal(err)
		}
		res, _ := x.Wait(context.Background())
		if res.Status != runbook.Succeeded || string(res.Output) != `{"n":100}` {
			b.Fatalf("%+v", res)
		}
	}
}

// discardHistory measures the cost of producing events without keeping them.
type discardHistory struct{}

func (discardHistory) Record(runbook.Event) error { return nil }
