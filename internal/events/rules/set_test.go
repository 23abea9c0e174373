package rules_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

func mustCompile(t testing.TB, name string, spec rules.RuleSpec) *rules.Rule {
	t.Helper()
	r, err := rules.Compile(name, spec)
	if err != nil {
		t.Fatalf("Compile(%s): %v", name, err)
	}
	return r
}

func TestSetMatch(t *testing.T) {
	failed := mustCompile(t, "backup-failed", rules.RuleSpec{
		Pattern: map[string]any{
			"source":      []any{"rewind.backup"},
			"detail-type": []any{"Backup Job State Change"},
			"detail":      map[string]any{"state": []any{"FAILED", "EXPIRED"}},
		},
		Targets: []rules.TargetSpec{
			{Exec: &rules.ExecSpec{Command: []string{"/usr/local/bin/page-oncall", "$.detail.jobId", "--size", "$.detail.size", "$.detail.nope", "$HOME"}}},
			{Incident: &rules.IncidentSpec{Title: "Backup of <resource> failed (<job>, <detail-type>) at <site>", Severity: "high"}},
			{Runbook: &rules.RunbookSpec{Name: "shop-recovery"}, InputTransformer: &rules.TransformerSpec{Template: `{"rule": <rewind.rule-name>}`},
				Retry: &rules.RetrySpec{MaxAttempts: intp(3)}},
		},
		InputTransformer: &rules.TransformerSpec{Paths: map[string]string{"job": "$.detail.jobId"}, Template: `job <job> failed`},
		Retry:            &rules.RetrySpec{MaxAge: rules.Duration(time.Hour)},
	})
	other := mustCompile(t, "other-source", rules.RuleSpec{
		Pattern: `{"source": ["rewind.restore"]}`,
		Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "x"}}},
	})
	disabled := mustCompile(t, "disabled", rules.RuleSpec{
		Pattern:  `{"source": ["rewind.backup"]}`,
		Targets:  []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "x"}}},
		Disabled: true,
	})
	anyBackup := mustCompile(t, "any-backup", rules.RuleSpec{
		Pattern: `{"resources": [{"prefix": "db/"}]}`,
		Targets: []rules.TargetSpec{{Notify: "ntfy://ntfy.sh/rewind"}},
	})
	set := rules.NewSet([]*rules.Rule{failed, other, disabled, anyBackup})
	if set.Len() != 3 {
		t.Errorf("Len = %d, want 3 (disabled left out)", set.Len())
	}
	ds, err := set.MatchAt(testEnvelope(), testTime)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 {
		t.Fatalf("got %d deliveries, want 4: %+v", len(ds), ds)
	}
	exec, inc, rb, nt := ds[0], ds[1], ds[2], ds[3]
	if exec.Rule != "backup-failed" || exec.TargetIndex != 0 || exec.EventID != testEnvelope().ID {
		t.Errorf("exec delivery header = %+v", exec)
	}
	wantArgs := []string{"/usr/local/bin/page-oncall", "j-42", "--size", "1.50", "", "$HOME"}
	if len(exec.Args) != len(wantArgs) {
		t.Fatalf("args = %q, want %q", exec.Args, wantArgs)
	}
	for i := range wantArgs {
		if exec.Args[i] != wantArgs[i] {
			t.Errorf("args[%d] = %q, want %q", i, exec.Args[i], wantArgs[i])
		}
	}
	if string(exec.Payload) != "job j-42 failed" {
		t.Errorf("exec payload = %s", exec.Payload)
	}
	if exec.Retry != (rules.RetryPolicy{MaxAttempts: 185, MaxAge: time.Hour}) {
		t.Errorf("rule retry = %+v", exec.Retry)
	}
	if inc.Title != "Backup of db/shop failed (j-42, Backup Job State Change) at eu-1" || inc.Target.Incident.Severity != "high" {
		t.Errorf("incident = %q %+v", inc.Title, inc.Target.Incident)
	}
	if string(rb.Payload) != `{"rule": "backup-failed"}` {
		t.Errorf("target transformer payload = %s", rb.Payload)
	}
	if rb.Retry != (rules.RetryPolicy{MaxAttempts: 3, MaxAge: time.Hour}) {
		t.Errorf("target retry = %+v", rb.Retry)
	}
	if nt.Rule != "any-backup" || string(nt.Payload) != string(nt.Event) {
		t.Errorf("notify delivery = %+v", nt)
	}

	// A Delivery survives a JSON round trip, as a durable queue stores it.
	b, err := json.Marshal(inc)
	if err != nil {
		t.Fatal(err)
	}
	var back rules.Delivery
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Title != inc.Title || string(back.Payload) != string(inc.Payload) || back.Target.Incident.Title != inc.Target.Incident.Title {
		t.Errorf("round trip changed the delivery: %+v", back)
	}

	env := testEnvelope()
	env.Detail = json.RawMessage(`{"state":"COMPLETED"}`)
	if ds, _ := set.MatchAt(env, testTime); len(ds) != 1 || ds[0].Rule != "any-backup" {
		t.Errorf("COMPLETED matched %+v", ds)
	}
	env.Detail = json.RawMessage(`[1]`)
	if _, err := set.Match(env); !errs.Is(err, errs.Invalid) {
		t.Errorf("array detail: err = %v, want invalid", err)
	}
}

func TestNoRetryTarget(t *testing.T) {
	r := mustCompile(t, "r", rules.RuleSpec{
		Pattern: `{"source": ["rewind.backup"]}`,
		Targets: []rules.TargetSpec{{Runbook: &rules.RunbookSpec{Name: "x"}, Retry: &rules.RetrySpec{MaxAttempts: intp(0)}}},
	})
	ds, err := rules.NewSet([]*rules.Rule{r}).Match(testEnvelope())
	if err != nil || len(ds) != 1 {
		t.Fatal(ds, err)
	}
	if _, retry := ds[0].Retry.Next(1, testTime, testTime, func() float64 { return 0.5 }); retry {
		t.Error("max_attempts: 0 still retries")
	}
}

func TestEnvelopeDefaults(t *testing.T) {
	b, err := json.Marshal(rules.Envelope{ID: "x", Source: "s", DetailType: "d", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"version":"0","id":"x","source":"s","detail-type":"d","time":"2026-01-02T02:04:05Z","site":"","resources":[],"detail":{}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
