package rules_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/events/rules"
)

var testTime = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func testEnvelope() rules.Envelope {
	return rules.Envelope{
		Version:    "0",
		ID:         "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
		Source:     "rewind.backup",
		DetailType: "Backup Job State Change",
		Time:       testTime,
		Site:       "eu-1",
		Resources:  []string{"db/shop", "vault/main"},
		Detail:     json.RawMessage(`{"jobId":"j-42","state":"FAILED","size":1.50,"tags":["a","b"],"msg":"disk \"full\" <now>"}`),
	}
}

// transform compiles a one-target rule with the transformer and returns the payload for
// testEnvelope.
func transform(t *testing.T, paths map[string]string, tmpl string) string {
	t.Helper()
	r, err := rules.Compile("backup-failed", rules.RuleSpec{
		Pattern:          map[string]any{"source": []any{"rewind.backup"}},
		Targets:          []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "shop"}}},
		InputTransformer: &rules.TransformerSpec{Paths: paths, Template: tmpl},
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	ds, err := rules.NewSet([]*rules.Rule{r}).MatchAt(testEnvelope(), testTime.Add(time.Second))
	if err != nil || len(ds) != 1 {
		t.Fatalf("MatchAt = %d deliveries, %v", len(ds), err)
	}
	return string(ds[0].Payload)
}

func TestTransformer(t *testing.T) {
	paths := map[string]string{
		"job":      "$.detail.jobId",
		"state":    "$.detail.state",
		"size":     "$.detail.size",
		"tags":     "$.detail.tags",
		"msg":      "$.detail.msg",
		"missing":  "$.detail.nope",
		"type":     "$.detail-type",
		"first":    "$.resources[0]",
		"detail":   "$.detail",
		"allTags":  "$.detail.tags[*]",
		"nothingx": "$.detail.nope[*]",
	}
	tests := []struct {
		name, tmpl, want string
		json             bool
	}{
		{"unquoted string becomes a JSON string", `{"job": <job>}`, `{"job": "j-42"}`, true},
		{"quoted string is inserted as content", `{"text": "job <job> is <state>"}`, `{"text": "job j-42 is FAILED"}`, true},
		{"number keeps its text", `{"size": <size>}`, `{"size": 1.50}`, true},
		{"quoted number", `{"s": "size <size>"}`, `{"s": "size 1.50"}`, true},
		{"array unquoted", `{"tags": <tags>}`, `{"tags": ["a","b"]}`, true},
		{"array quoted is escaped JSON", `{"t": "<tags>"}`, `{"t": "[\"a\",\"b\"]"}`, true},
		{"quoted value is escaped", `{"m": "<msg>"}`, `{"m": "disk \"full\" <now>"}`, true},
		{"unquoted value with quotes", `{"m": <msg>}`, `{"m": "disk \"full\" <now>"}`, true},
		{"missing unquoted is null", `{"x": <missing>}`, `{"x": null}`, true},
		{"missing quoted is empty", `{"x": "a<missing>b"}`, `{"x": "ab"}`, true},
		{"missing non-singular is null", `{"x": <nothingx>}`, `{"x": null}`, true},
		{"wildcard path yields an array", `{"x": <allTags>}`, `{"x": ["a","b"]}`, true},
		{"hyphen in dot notation", `{"t": <type>}`, `{"t": "Backup Job State Change"}`, true},
		{"array index", `[<first>]`, `["db/shop"]`, true},
		{"object", `{"d": <detail>}`, `{"d": {"jobId":"j-42","msg":"disk \"full\" <now>","size":1.50,"state":"FAILED","tags":["a","b"]}}`, true},
		{"whole template is a placeholder", `<job>`, `"j-42"`, true},
		{"JSON string template", `"job <job> failed"`, `"job j-42 failed"`, true},
		{"rule name", `{"r": <aws.events.rule-name>, "a": "<aws.events.rule-arn>", "w": <rewind.rule-name>}`, `{"r": "backup-failed", "a": "backup-failed", "w": "backup-failed"}`, true},
		{"ingestion time", `{"t": <aws.events.event.ingestion-time>}`, `{"t": "2026-03-14T09:26:54Z"}`, true},
		{"event without detail", `<aws.events.event>`, `{"detail-type":"Backup Job State Change","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","resources":["db/shop","vault/main"],"site":"eu-1","source":"rewind.backup","time":"2026-03-14T09:26:53Z","version":"0"}`, true},
		{"whole event", `{"e": <aws.events.event.json>}`, `{"e": {"detail":{"jobId":"j-42","msg":"disk \"full\" <now>","size":1.50,"state":"FAILED","tags":["a","b"]},"detail-type":"Backup Job State Change","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","resources":["db/shop","vault/main"],"site":"eu-1","source":"rewind.backup","time":"2026-03-14T09:26:53Z","version":"0"}}`, true},
		{"plain text", `job <job> failed (<state>)`, `job j-42 failed (FAILED)`, false},
		{"plain text inserts strings raw", `msg: <msg>`, `msg: disk "full" <now>`, false},
		{"plain text missing is empty", `[<missing>]!`, `[]!`, false},
		{"plain text number and array", `<size> <tags>`, `1.50 ["a","b"]`, false},
		{"text with stray angle brackets", `a < b > c <job>`, `a < b > c j-42`, false},
		{"placeholder as a key is text", `{<job>: 1}`, `{j-42: 1}`, false},
		{"escaped quote inside string", `{"a": "x\"<job>"}`, `{"a": "x\"j-42"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := transform(t, paths, tt.tmpl)
			if got != tt.want {
				t.Errorf("template %s\n got %s\nwant %s", tt.tmpl, got, tt.want)
			}
			if tt.json && !json.Valid([]byte(got)) {
				t.Errorf("output of a JSON template is not JSON: %s", got)
			}
		})
	}
}

func TestWholeEventPayloadWithoutTransformer(t *testing.T) {
	r, err := rules.Compile("all", rules.RuleSpec{
		Pattern: `{"source": ["rewind.backup"]}`,
		Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "shop"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := rules.NewSet([]*rules.Rule{r}).Match(testEnvelope())
	if err != nil || len(ds) != 1 {
		t.Fatalf("Match = %v, %v", ds, err)
	}
	var got map[string]any
	if err := json.Unmarshal(ds[0].Payload, &got); err != nil {
		t.Fatal(err)
	}
	if got["id"] != testEnvelope().ID || got["detail"].(map[string]any)["jobId"] != "j-42" {
		t.Errorf("payload is not the whole event: %s", ds[0].Payload)
	}
	if string(ds[0].Payload) != string(ds[0].Event) {
		t.Errorf("payload differs from event")
	}
}
