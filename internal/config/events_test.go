package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
)

// TestEventsErrorPositions checks that problems in the events block and the rules,
// intake, monitors and alarms sections are reported at file:line:column with their field
// path. Each case is appended to base (three lines), so its first line is line 4.
func TestEventsErrorPositions(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		at   string // "c.yaml:line:column: path: " as reported
		msg  string // a part of the message
	}{
		// rules: the position of the offending field inside the rule.
		{"rule webhook url", "rules:\n  bad:\n    pattern: {source: [rewind.backup]}\n    targets:\n      - webhook: {url: \"ftp://x\"}\n",
			"c.yaml:8:24: rules.bad.targets[0].webhook.url: ", `"ftp://x" must start with https:// or http://`},
		{"rule pattern", "rules:\n  bad:\n    pattern: {source: rewind.backup}\n    targets: [{notify: \"logger://\"}]\n",
			"c.yaml:6:14: rules.bad.pattern: ", "$.source: must be an array"},
		{"rule retry", "rules:\n  bad:\n    pattern: {source: [a]}\n    targets:\n      - notify: \"logger://\"\n        retry: {max_attempts: 500}\n",
			"c.yaml:9:31: rules.bad.targets[0].retry.max_attempts: ", "500 is out of range"},
		{"rule unknown field", "rules:\n  bad:\n    pattern: {source: [a]}\n    target: []\n",
			"c.yaml:7:5: rules.bad: ", `unknown field "target"; did you mean "targets"?`},
		{"rule duration without unit", "rules:\n  bad:\n    pattern: {source: [a]}\n    targets:\n      - webhook: {url: \"https://x\", timeout: 5}\n",
			"c.yaml:6:5: rules.bad: ", "duration 5 must have a unit"},
		{"rule name", "rules:\n  \"a b\":\n    pattern: {source: [a]}\n    targets: [{notify: \"logger://\"}]\n",
			"c.yaml:6:5: rules.a b: ", `rule name "a b" may hold only letters, digits`},
		// intake
		{"intake reserved source", "intake:\n  ci:\n    source: rewind.ci\n    detail_type: X\n",
			"c.yaml:6:5: intake.ci: ", `"rewind.ci" starts with "rewind.", which is reserved`},
		{"intake missing source", "intake:\n  ci:\n    detail_type: X\n",
			"c.yaml:6:5: intake.ci: ", `missing required field "source"`},
		{"intake built-in name", "intake:\n  alertmanager:\n    source: a.b\n    detail_type: X\n",
			"c.yaml:5:3: intake: ", `intake name "alertmanager" is taken by the built-in Alertmanager receiver`},
		{"intake bad JSONPath", "intake:\n  ci:\n    source: a.b\n    detail_type: X\n    detail: \"$[\"\n",
			"c.yaml:6:5: intake.ci: ", `detail: "$[" is not a valid JSONPath`},
		// monitors
		{"monitor url", "monitors:\n  web:\n    http: {url: \"ftp://x\"}\n",
			"c.yaml:6:17: monitors.web.http.url: ", `"ftp://x" is not an http:// or https:// URL`},
		{"monitor unknown field", "monitors:\n  web:\n    htp: {url: \"http://x\"}\n",
			"c.yaml:6:5: monitors.web: ", `unknown field "htp"; did you mean "http"?`},
		{"monitor bad duration", "monitors:\n  web:\n    http: {url: \"http://x\"}\n    every: soon\n",
			"c.yaml:7:12: monitors.web.every: ", "cannot use the text `soon` as a duration (such as 10s or 5m)"},
		// alarms
		{"alarm unknown field", "alarms:\n  a:\n    metric: m\n    treshold: \"> 1\"\n",
			"c.yaml:7:5: alarms.a: ", `unknown field "treshold"; did you mean "threshold"?`},
		{"alarm selector", "alarms:\n  a:\n    metric: \"m{\"\n    threshold: \"> 1\"\n",
			"c.yaml:6:13: alarms.a.metric: ", `selector "m{": column 3: missing '}'`},
		{"alarm unknown monitor", "alarms:\n  a:\n    monitor: ghost\n",
			"c.yaml:5:3: alarms: ", `alarm a: monitor "ghost" does not exist`},
		{"alarm cycle", "alarms:\n  a:\n    composite: \"ALARM(b)\"\n  b:\n    composite: \"ALARM(a)\"\n",
			"c.yaml:5:3: alarms: ", "composite alarms form a cycle: a -> b -> a"},
		// events
		{"archive negative", "events:\n  archive: -1h\n",
			"c.yaml:5:12: events.archive: ", `duration "-1h" is negative`},
		{"archive not a duration", "events:\n  archive: forever\n",
			"c.yaml:5:12: events.archive: ", `duration "forever"`},
		{"relative secret file", "events:\n  alertmanager_secret_file: relative/secret\n",
			"c.yaml:5:29: events.alertmanager_secret_file: ", `"relative/secret" is relative; give an absolute path`},
		{"events unknown field", "events:\n  archve: 1h\n",
			"c.yaml:5:3: events: ", `unknown field "archve"; did you mean "archive"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(base+tt.yaml))
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Parse: %v, want an invalid error", err)
			}
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse: %v does not hold the problems", err)
			}
			if len(ps) != 1 {
				t.Fatalf("%d problems, want 1:\n%v", len(ps), err)
			}
			got := ps[0].String()
			if !strings.HasPrefix(got, tt.at) || !strings.Contains(got[len(tt.at):], tt.msg) {
				t.Errorf("problem:\n  %s\nwant it to start with %q and hold %q", got, tt.at, tt.msg)
			}
		})
	}
}

// TestEventsSectionsParse checks a valid configuration of every events section.
func TestEventsSectionsParse(t *testing.T) {
	yaml := base + `events:
  archive: 72h
  alertmanager_secret_file: /etc/rewind/am.secret
rules:
  failed-backups:
    pattern: {source: [rewind.backup], detail: {state: [FAILED]}}
    targets:
      - webhook: {url: "https://hooks.example.com/x", timeout: 5s}
        retry: {max_attempts: 3, max_age: 1h}
intake:
  ci: {source: ci.example, detail_type: Pipeline Finished, detail: $.build}
monitors:
  web: {http: {url: "http://127.0.0.1:8080/health"}, every: 30s}
alarms:
  web-down: {monitor: web, datapoints_to_alarm: 2, evaluation_periods: 3}
`
	cfg, err := config.Parse("c.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Events.Archive.Hours() != 72 || cfg.Events.AlertmanagerSecretFile != "/etc/rewind/am.secret" {
		t.Errorf("events: %+v", cfg.Events)
	}
	r := cfg.Rules["failed-backups"]
	if len(r.Targets) != 1 || r.Targets[0].Retry == nil || *r.Targets[0].Retry.MaxAttempts != 3 {
		t.Errorf("rule: %+v", r)
	}
	if cfg.Intake["ci"].DetailType != "Pipeline Finished" || cfg.Monitors["web"].HTTP == nil ||
		cfg.Alarms["web-down"].Monitor != "web" {
		t.Errorf("intake %+v, monitors %+v, alarms %+v", cfg.Intake, cfg.Monitors, cfg.Alarms)
	}
}
