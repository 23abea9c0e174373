package rules_test

import (
	"encoding/json"
	"testing"

	"github.com/rewind-dr/rewind/internal/events/rules"
)

// FuzzTransformer compiles user-written templates and paths and applies them to
// user-supplied details: nothing may panic, and a template that compiles as JSON with
// every placeholder inside a string must give JSON.
func FuzzTransformer(f *testing.F) {
	f.Add(`{"job": <job>, "t": "<job> x <missing>"}`, "$.detail.jobId", `{"jobId": "j-1"}`)
	f.Add(`job <job> failed`, "$.detail", `{"a": [1, 2.50, null]}`)
	f.Add(`"<job>\"<aws.events.event>"`, "$..a", `{"a": {"a": "\u003c"}}`)
	f.Add(`<aws.events.event.json>`, "$.detail-type", `{}`)
	f.Add(`{"a": "<job>", <job>}`, "$.resources[0]", `{"x": "\"\\"}`)
	f.Fuzz(func(t *testing.T, tmpl, path, detail string) {
		if !json.Valid([]byte(detail)) || len(detail) == 0 || detail[0] != '{' {
			return
		}
		r, err := rules.Compile("fuzz", rules.RuleSpec{
			Pattern:          `{"source": ["rewind.backup"]}`,
			Targets:          []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "r"}}},
			InputTransformer: &rules.TransformerSpec{Paths: map[string]string{"job": path}, Template: tmpl},
		})
		if err != nil {
			return
		}
		env := testEnvelope()
		env.Detail = json.RawMessage(detail)
		ds, err := rules.NewSet([]*rules.Rule{r}).MatchAt(env, testTime)
		if err != nil {
			t.Fatalf("MatchAt: %v", err)
		}
		if len(ds) != 1 {
			t.Fatalf("%d deliveries", len(ds))
		}
		// With every placeholder replaced by a JSON value the template probe was valid, so
		// if the template is valid JSON once placeholders are null, the output must be too.
		if json.Valid([]byte(nullPlaceholders(tmpl))) && !json.Valid(ds[0].Payload) {
			t.Fatalf("template %q gave invalid JSON %q", tmpl, ds[0].Payload)
		}
	})
}

// nullPlaceholders mimics the JSON test of a template: placeholders outside strings
// become null and those inside strings vanish.
func nullPlaceholders(s string) string {
	out := []byte{}
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '<' {
			j := i + 1
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_' || s[j] == '-' || s[j] == '.') {
				j++
			}
			if j > i+1 && j < len(s) && s[j] == '>' {
				if !inString {
					out = append(out, "null"...)
				}
				i = j
				escaped = false
				continue
			}
		}
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
		out = append(out, c)
	}
	return string(out)
}
