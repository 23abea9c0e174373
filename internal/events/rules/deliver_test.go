package rules_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// deliveryFor compiles a rule with the one target and returns its delivery for
// testEnvelope.
func deliveryFor(t *testing.T, ts rules.TargetSpec, tr *rules.TransformerSpec) rules.Delivery {
	t.Helper()
	r := mustCompile(t, "backup-failed", rules.RuleSpec{
		Pattern:          `{"source": ["rewind.backup"]}`,
		Targets:          []rules.TargetSpec{ts},
		InputTransformer: tr,
	})
	ds, err := rules.NewSet([]*rules.Rule{r}).MatchAt(testEnvelope(), testTime)
	if err != nil || len(ds) != 1 {
		t.Fatalf("MatchAt = %v, %v", ds, err)
	}
	return ds[0]
}

type received struct {
	header http.Header
	body   []byte
}

func TestWebhookDelivery(t *testing.T) {
	secret := []byte("0123456789abcdef")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hook.key")
	if err := os.WriteFile(keyFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []received
	statuses := []int{500, 200, 400, 429, 302}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), body})
		code := statuses[len(got)-1]
		mu.Unlock()
		if code == 302 {
			w.Header().Set("Location", "https://elsewhere.example/")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "status body")
	}))
	defer srv.Close()

	d := deliveryFor(t, rules.TargetSpec{Webhook: &rules.WebhookSpec{
		URL: srv.URL + "/hook", SecretFile: keyFile, Headers: map[string]string{"X-Team": "ops"},
	}}, &rules.TransformerSpec{Paths: map[string]string{"job": "$.detail.jobId"}, Template: `{"text": "job <job> failed"}`})
	now := time.Unix(1_800_000_000, 0)
	dl := &rules.Deliverer{Now: func() time.Time { return now }}
	ctx := context.Background()

	err := dl.Deliver(ctx, d, rules.FileSecrets{})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("500: err = %v, want unavailable", err)
	}
	if !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), `rule "backup-failed" target 0 (webhook)`) {
		t.Errorf("500 error does not say what failed: %v", err)
	}
	if err := dl.Deliver(ctx, d, rules.FileSecrets{}); err != nil {
		t.Fatalf("200: %v", err)
	}
	if err := dl.Deliver(ctx, d, rules.FileSecrets{}); !errs.Is(err, errs.Invalid) {
		t.Errorf("400: err = %v, want invalid (permanent)", err)
	}
	if err := dl.Deliver(ctx, d, rules.FileSecrets{}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("429: err = %v, want unavailable", err)
	}
	if err := dl.Deliver(ctx, d, rules.FileSecrets{}); !errs.Is(err, errs.Invalid) || !strings.Contains(errs.HintOf(err), "elsewhere.example") {
		t.Errorf("302: err = %v (hint %q), want invalid naming the new location", err, errs.HintOf(err))
	}

	r := got[1]
	if string(r.body) != `{"text": "job j-42 failed"}` {
		t.Errorf("body = %s", r.body)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Rewind-Event-Id": testEnvelope().ID, "Rewind-Rule": "backup-failed", "X-Team": "ops",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	sig := r.header.Get(rules.SignatureHeader)
	if !strings.HasPrefix(sig, "t=1800000000,v1=") {
		t.Errorf("signature header = %q", sig)
	}
	if err := rules.Verify(secret, sig, r.body, now.Add(time.Minute), 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := rules.Verify([]byte("other"), sig, r.body, now, 0); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("Verify with another secret: %v", err)
	}
}

func TestWebhookFailures(t *testing.T) {
	ctx := context.Background()
	dl := &rules.Deliverer{}

	// Nothing listens on a closed server's address: a network error is retryable.
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	d := deliveryFor(t, rules.TargetSpec{Webhook: &rules.WebhookSpec{URL: addr}}, nil)
	if err := dl.Deliver(ctx, d, nil); !errs.Is(err, errs.Unavailable) {
		t.Errorf("connection refused: err = %v, want unavailable", err)
	}

	// A receiver slower than the timeout.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	d = deliveryFor(t, rules.TargetSpec{Webhook: &rules.WebhookSpec{URL: slow.URL, Timeout: rules.Duration(50 * time.Millisecond)}}, nil)
	if err := dl.Deliver(ctx, d, nil); !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("timeout: err = %v", err)
	}

	// A missing secret file is not retried and says how to make one.
	d = deliveryFor(t, rules.TargetSpec{Webhook: &rules.WebhookSpec{URL: slow.URL, SecretFile: "/nonexistent/hook.key"}}, nil)
	if err := dl.Deliver(ctx, d, rules.FileSecrets{}); !errs.Is(err, errs.NotFound) || !strings.Contains(errs.HintOf(err), "openssl rand") {
		t.Errorf("missing secret: err = %v hint %q", err, errs.HintOf(err))
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecDelivery(t *testing.T) {
	ctx := context.Background()
	dl := &rules.Deliverer{}
	out := filepath.Join(t.TempDir(), "out")
	script := writeScript(t, `{ printf '%s|' "$@"; echo "$REWIND_RULE $REWIND_EVENT_ID $TEAM"; cat; } > "`+out+`"`)
	d := deliveryFor(t, rules.TargetSpec{Exec: &rules.ExecSpec{
		Command: []string{script, "$.detail.jobId", "$.detail.tags", "literal"},
		Env:     map[string]string{"TEAM": "ops"},
	}}, nil)
	if err := dl.Deliver(ctx, d, nil); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `j-42|["a","b"]|literal|backup-failed ` + testEnvelope().ID + " ops\n" + string(d.Event)
	if string(b) != want {
		t.Errorf("script saw\n%s\nwant\n%s", b, want)
	}

	failing := writeScript(t, "echo first line >&2\necho 'disk quota exceeded' >&2\nexit 3\n")
	d = deliveryFor(t, rules.TargetSpec{Exec: &rules.ExecSpec{Command: []string{failing}}}, nil)
	err = dl.Deliver(ctx, d, nil)
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "disk quota exceeded") {
		t.Errorf("failing script: err = %v", err)
	}

	hanging := writeScript(t, "sleep 30\n")
	d = deliveryFor(t, rules.TargetSpec{Exec: &rules.ExecSpec{Command: []string{hanging}, Timeout: rules.Duration(100 * time.Millisecond)}}, nil)
	if err := dl.Deliver(ctx, d, nil); !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "did not finish within") {
		t.Errorf("hanging script: err = %v", err)
	}

	d = deliveryFor(t, rules.TargetSpec{Exec: &rules.ExecSpec{Command: []string{"/nonexistent/page-oncall"}}}, nil)
	if err := dl.Deliver(ctx, d, nil); !errs.Is(err, errs.Invalid) {
		t.Errorf("missing program: err = %v, want invalid", err)
	}
}

func TestNotifyDelivery(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, r.URL.Path+" "+string(b))
		if fail {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	url := "generic+" + srv.URL + "/notify?template=json"
	d := deliveryFor(t, rules.TargetSpec{Notify: url},
		&rules.TransformerSpec{Paths: map[string]string{"job": "$.detail.jobId"}, Template: "Backup job <job> failed"})
	dl := &rules.Deliverer{}
	if err := dl.Deliver(context.Background(), d, nil); !errs.Is(err, errs.Unavailable) {
		t.Errorf("502: err = %v, want unavailable", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := dl.Deliver(context.Background(), d, nil); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("server saw %d requests", len(bodies))
	}
	path, body, _ := strings.Cut(bodies[1], " ")
	var msg map[string]string
	if err := json.Unmarshal([]byte(body), &msg); err != nil || path != "/notify" || msg["message"] != "Backup job j-42 failed" {
		t.Errorf("server saw %s %s (%v)", path, body, err)
	}
}

type fakeRunbooks struct {
	name  string
	input json.RawMessage
	err   error
}

func (f *fakeRunbooks) StartRunbook(_ context.Context, name string, input json.RawMessage) error {
	f.name, f.input = name, input
	return f.err
}

type fakeIncidents struct{ got []rules.Incident }

func (f *fakeIncidents) OpenIncident(_ context.Context, inc rules.Incident) error {
	f.got = append(f.got, inc)
	return nil
}

func TestRunbookAndIncidentDelivery(t *testing.T) {
	ctx := context.Background()
	rb := &fakeRunbooks{}
	inc := &fakeIncidents{}
	dl := &rules.Deliverer{Runbooks: rb, Incidents: inc}

	d := deliveryFor(t, rules.TargetSpec{Runbook: &rules.RunbookSpec{Name: "shop-recovery"}},
		&rules.TransformerSpec{Paths: map[string]string{"job": "$.detail.jobId"}, Template: `{"job": <job>}`})
	if err := dl.Deliver(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	if rb.name != "shop-recovery" || string(rb.input) != `{"job": "j-42"}` {
		t.Errorf("runbook got %s %s", rb.name, rb.input)
	}
	rb.err = errors.New("engine busy")
	if err := dl.Deliver(ctx, d, nil); !errs.Is(err, errs.Unavailable) {
		t.Errorf("plain error: %v, want unavailable", err)
	}
	rb.err = errs.Errorf("runbook.Start", errs.NotFound, "no runbook shop-recovery")
	if err := dl.Deliver(ctx, d, nil); !errs.Is(err, errs.NotFound) {
		t.Errorf("classified error: %v, want not found", err)
	}
	if err := (&rules.Deliverer{}).Deliver(ctx, d, nil); !errs.Is(err, errs.Invalid) {
		t.Errorf("no runbook starter: %v", err)
	}

	d = deliveryFor(t, rules.TargetSpec{Incident: &rules.IncidentSpec{Title: "Backup of <resource> failed", Severity: "critical"}}, nil)
	if err := dl.Deliver(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	if len(inc.got) != 1 || inc.got[0].Title != "Backup of db/shop failed" || inc.got[0].Severity != "critical" ||
		inc.got[0].Rule != "backup-failed" || string(inc.got[0].Event) != string(d.Event) {
		t.Errorf("incident = %+v", inc.got)
	}
}
