package rules_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

func intp(n int) *int { return &n }

func TestCompileErrors(t *testing.T) {
	pat := map[string]any{"source": []any{"rewind.backup"}}
	hook := rules.TargetSpec{Webhook: &rules.WebhookSpec{URL: "https://ops.example/hook"}}
	tests := []struct {
		name string
		rule string
		spec rules.RuleSpec
		want string // substring of the error
	}{
		{"empty name", "", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}}, "must be 1 to 64"},
		{"bad name", "a b", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}}, "may hold only"},
		{"no pattern", "r", rules.RuleSpec{Targets: []rules.TargetSpec{hook}}, `rule "r": pattern: is missing`},
		{"pattern error", "r", rules.RuleSpec{Pattern: map[string]any{"source": "x"}, Targets: []rules.TargetSpec{hook}}, `rule "r": pattern: pattern.Compile: $.source`},
		{"pattern bad JSON text", "r", rules.RuleSpec{Pattern: `{"source":`, Targets: []rules.TargetSpec{hook}}, "not valid JSON"},
		{"no targets", "r", rules.RuleSpec{Pattern: pat}, "targets: the rule has no targets"},
		{"too many targets", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook, hook, hook, hook, hook, hook}}, "6 targets, at most 5"},
		{"empty target", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{}}}, "targets[0]: sets no target"},
		{"two kinds", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook, {Notify: "ntfy://ntfy.sh/x", Runbook: &rules.RunbookSpec{Name: "x"}}}}, "targets[1]: sets notify and runbook"},
		{"webhook no url", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{}}}}, "targets[0].webhook.url: is empty"},
		{"webhook bad scheme", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "ftp://x/y"}}}}, "webhook.url: \"ftp://x/y\" must start with https://"},
		{"webhook no host", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "https:///hook"}}}}, "has no host"},
		{"webhook unparsable", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "https://a b/%zz"}}}}, "is not a URL"},
		{"webhook reserved header", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "https://x/", Headers: map[string]string{"rewind-signature": "x"}}}}}, "webhook.headers: \"rewind-signature\" is set by Rewind"},
		{"webhook bad header", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "https://x/", Headers: map[string]string{"a b": "x"}}}}}, "not a valid HTTP header name"},
		{"webhook relative secret", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "https://x/", SecretFile: "hook.key"}}}}, "secret_file: \"hook.key\" must be an absolute path"},
		{"webhook timeout", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: &rules.WebhookSpec{URL: "https://x/", Timeout: rules.Duration(time.Hour)}}}}, "webhook.timeout: 1h0m0s is out of range"},
		{"notify unknown service", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Notify: "nosuch://token@host"}}}, `targets[0].notify: the "nosuch" notification URL is not valid`},
		{"exec empty", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Exec: &rules.ExecSpec{}}}}, "exec.command: is empty"},
		{"exec bad path", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Exec: &rules.ExecSpec{Command: []string{"/bin/true", "$.detail[?"}}}}}, "exec.command[1]: \"$.detail[?\" is not a valid JSONPath"},
		{"exec relative dir", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Exec: &rules.ExecSpec{Command: []string{"/bin/true"}, Dir: "tmp"}}}}, "exec.dir"},
		{"exec bad env", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Exec: &rules.ExecSpec{Command: []string{"/bin/true"}, Env: map[string]string{"A=B": "c"}}}}}, "exec.env"},
		{"runbook name", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{}}}}, "targets[0].runbook.name: runbook name"},
		{"incident title", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Incident: &rules.IncidentSpec{}}}}, "incident.title: is empty"},
		{"incident severity", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Incident: &rules.IncidentSpec{Title: "x", Severity: "urgent"}}}}, `incident.severity: "urgent" is not a severity`},
		{"incident unknown placeholder", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Incident: &rules.IncidentSpec{Title: "Backup of <resourse> failed"}}}}, "incident.title: placeholder <resourse> is not defined"},
		{"transformer unknown placeholder", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, InputTransformer: &rules.TransformerSpec{Paths: map[string]string{"job": "$.detail.jobId"}, Template: `{"j": <jobb>, "k": "<x>"}`}}, "input_transformer.template: placeholder <jobb>, <x> is not defined (defined: <job>,"},
		{"transformer empty template", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, InputTransformer: &rules.TransformerSpec{}}, "input_transformer.template: is empty"},
		{"transformer bad path", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, InputTransformer: &rules.TransformerSpec{Paths: map[string]string{"job": "detail.jobId"}, Template: "<job>"}}, "input_transformer.paths.job: \"detail.jobId\" is not a JSONPath"},
		{"transformer reserved name", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, InputTransformer: &rules.TransformerSpec{Paths: map[string]string{"aws.x": "$.id"}, Template: "<aws.x>"}}, "is reserved"},
		{"transformer too many paths", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, InputTransformer: &rules.TransformerSpec{Paths: manyPaths(101), Template: "x"}}, "101 variables, at most 100"},
		{"target transformer", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook, {Notify: "ntfy://ntfy.sh/x", InputTransformer: &rules.TransformerSpec{Template: "<y>"}}}}, "targets[1].input_transformer.template: placeholder <y>"},
		{"retry attempts", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, Retry: &rules.RetrySpec{MaxAttempts: intp(186)}}, "retry.max_attempts: 186 is out of range"},
		{"retry age", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{hook}, Retry: &rules.RetrySpec{MaxAge: rules.Duration(25 * time.Hour)}}, "retry.max_age: 25h0m0s is out of range"},
		{"target retry age", "r", rules.RuleSpec{Pattern: pat, Targets: []rules.TargetSpec{{Webhook: hook.Webhook, Retry: &rules.RetrySpec{MaxAge: rules.Duration(time.Second)}}}}, "targets[0].retry.max_age: 1s is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.Compile(tt.rule, tt.spec)
			if err == nil {
				t.Fatalf("Compile succeeded, want error containing %q", tt.want)
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("kind = %v, want invalid", errs.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func manyPaths(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["v"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+strings.Repeat("y", i/26)] = "$.id"
	}
	return m
}

func TestCompileSecretsNotLeaked(t *testing.T) {
	_, err := rules.Compile("r", rules.RuleSpec{
		Pattern: `{"source":["x"]}`,
		Targets: []rules.TargetSpec{{Notify: "slack://hook:s3cretTOKEN@"}},
	})
	if err == nil {
		t.Fatal("a slack URL without a channel compiled")
	}
	if strings.Contains(err.Error(), "s3cretTOKEN") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestCompileHintFromPattern(t *testing.T) {
	_, err := rules.Compile("r", rules.RuleSpec{Pattern: `[1]`, Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "x"}}}})
	if errs.HintOf(err) == "" {
		t.Errorf("pattern error lost its hint: %v", err)
	}
}

// TestSpecDecoding checks the JSON form of a rule as the configuration writes it.
func TestSpecDecoding(t *testing.T) {
	const cfg = `{
	  "pattern": {"source": ["rewind.backup"], "detail-type": ["Backup Job State Change"], "detail": {"state": ["FAILED", "EXPIRED"]}},
	  "targets": [
	    {"webhook": {"url": "https://ops.example/hook", "secret_file": "/etc/rewind/hook.key", "timeout": "5s"}},
	    {"notify": "ntfy://ntfy.sh/rewind-alerts"},
	    {"exec": {"command": ["/usr/local/bin/page-oncall", "$.detail.jobId"]}},
	    {"runbook": {"name": "shop-recovery"}},
	    {"incident": {"title": "Backup of <resource> failed"}, "retry": {"max_attempts": 0}}
	  ],
	  "input_transformer": {"paths": {"job": "$.detail.jobId"}, "template": "{\"text\": \"job <job> failed\"}"},
	  "retry": {"max_attempts": 185, "max_age": "24h"}
	}`
	var spec rules.RuleSpec
	if err := json.Unmarshal([]byte(cfg), &spec); err != nil {
		t.Fatal(err)
	}
	r, err := rules.Compile("backup-failed", spec)
	if err != nil {
		t.Fatal(err)
	}
	ts := r.Targets()
	kinds := []string{}
	for _, tg := range ts {
		kinds = append(kinds, tg.Kind())
	}
	if got := strings.Join(kinds, ","); got != "webhook,notify,exec,runbook,incident" {
		t.Errorf("kinds = %s", got)
	}
	if ts[0].Webhook.Timeout != rules.Duration(5*time.Second) || ts[4].Incident.Severity != "medium" {
		t.Errorf("defaults not applied: %+v %+v", ts[0].Webhook, ts[4].Incident)
	}
	var bad rules.RuleSpec
	if err := json.Unmarshal([]byte(`{"retry": {"max_age": 3600}}`), &bad); err == nil || !strings.Contains(err.Error(), "must be a string with a unit") {
		t.Errorf("numeric duration: err = %v", err)
	}
}
