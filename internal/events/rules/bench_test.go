package rules_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/rewind-dr/rewind/internal/events/rules"
)

// BenchmarkMatch1000Rules matches one event against 1,000 compiled rules: 100 sources with
// ten rules each (state values, a prefix, a numeric range, an input transformer), plus
// the rules that the event's source selects. It reports matches per second.
func BenchmarkMatch1000Rules(b *testing.B) {
	var rs []*rules.Rule
	for i := range 1000 {
		src := fmt.Sprintf("rewind.sub%d", i%100)
		if i%100 == 0 {
			src = "rewind.backup"
		}
		pat := fmt.Sprintf(`{"source": [%q], "detail": {"state": ["FAILED", "S%d"], "size": [{"numeric": [">=", 1, "<", %d]}], "jobId": [{"prefix": "j-"}]}}`, src, i, 2+i%7)
		rs = append(rs, mustCompile(b, fmt.Sprintf("rule-%d", i), rules.RuleSpec{
			Pattern: json.RawMessage(pat),
			Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "r"}}},
			InputTransformer: &rules.TransformerSpec{
				Paths:    map[string]string{"job": "$.detail.jobId", "state": "$.detail.state"},
				Template: `{"text": "job <job> is <state>", "rule": <aws.events.rule-name>}`,
			},
		}))
	}
	set := rules.NewSet(rs)
	env := testEnvelope()
	ds, err := set.MatchAt(env, testTime)
	if err != nil || len(ds) != 10 {
		b.Fatalf("MatchAt = %d deliveries, %v; want 10", len(ds), err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := set.MatchAt(env, testTime); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}

// BenchmarkMatch1000UnindexedRules is the worst case: no rule names a source or
// detail-type, so every rule is evaluated.
func BenchmarkMatch1000UnindexedRules(b *testing.B) {
	var rs []*rules.Rule
	for i := range 1000 {
		pat := fmt.Sprintf(`{"detail": {"state": ["S%d"], "jobId": [{"prefix": "j-"}]}}`, i)
		rs = append(rs, mustCompile(b, fmt.Sprintf("rule-%d", i), rules.RuleSpec{
			Pattern: json.RawMessage(pat),
			Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "r"}}},
		}))
	}
	set := rules.NewSet(rs)
	env := testEnvelope()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := set.MatchAt(env, testTime); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}
