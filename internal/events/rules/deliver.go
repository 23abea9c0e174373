package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

const opDeliver = "rules.Deliver"

// SecretLoader reads the secret a webhook target names in secret_file. It returns
// errs.NotFound or errs.Invalid when the secret cannot be had, is safe for concurrent use
// and does not retry.
type SecretLoader interface {
	LoadSecret(ctx context.Context, ref string) ([]byte, error)
}

// FileSecrets is the SecretLoader that reads secrets from files, trimming surrounding
// white space such as the trailing newline editors add.
type FileSecrets struct{}

var _ SecretLoader = FileSecrets{}

// LoadSecret reads the file at path.
func (FileSecrets) LoadSecret(_ context.Context, path string) ([]byte, error) {
	const op = "rules.LoadSecret"
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, errs.Errorf(op, errs.NotFound, "webhook secret file %s does not exist", path).
			WithHint("create it with a random secret, for example: openssl rand -hex 32 > " + path)
	case err != nil:
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("webhook secret file %s: %w", path, err))
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errs.Errorf(op, errs.Invalid, "webhook secret file %s is empty", path).
			WithHint("write a random secret into it, for example: openssl rand -hex 32 > " + path)
	}
	return b, nil
}

// RunbookStarter starts runbooks for runbook targets. StartRunbook returns errs.NotFound
// when no runbook has that name and errs.Unavailable when it cannot start one now; it must
// be safe for concurrent use and need not retry.
type RunbookStarter interface {
	StartRunbook(ctx context.Context, name string, input json.RawMessage) error
}

// Incident is what an incident target records: the rule that matched, the title with its
// placeholders filled, the severity and the event.
type Incident struct {
	Rule     string          `json:"rule"`
	Title    string          `json:"title"`
	Severity string          `json:"severity"`
	Event    json.RawMessage `json:"event"`
}

// IncidentSink records incidents for incident targets. OpenIncident returns
// errs.Unavailable when the record cannot be written now; it must be safe for concurrent
// use and need not retry.
type IncidentSink interface {
	OpenIncident(ctx context.Context, inc Incident) error
}

// Deliverer executes deliveries. Client is used for webhooks (nil means a client that
// does not follow redirects); Runbooks and Incidents serve runbook and incident targets;
// Now is the clock for webhook signatures (nil means time.Now). A Deliverer is safe for
// concurrent use once configured.
type Deliverer struct {
	Client    *http.Client
	Runbooks  RunbookStarter
	Incidents IncidentSink
	Now       func() time.Time
}

var defaultClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Deliver invokes d's target once. It returns nil on success, an errs.Unavailable error
// when the attempt may succeed later (a network error, a timeout, HTTP 408, 429 or 5xx, a
// command that failed), and another kind (errs.Invalid mostly) when retrying cannot help:
// the caller retries the first with RetryPolicy.Next and dead-letters the others at once.
// secrets is used only by webhook targets with a secret_file. Deliver does not retry.
func (dl *Deliverer) Deliver(ctx context.Context, d Delivery, secrets SecretLoader) error {
	var err error
	switch t := d.Target; {
	case t.Webhook != nil:
		err = dl.webhook(ctx, d, secrets)
	case t.Notify != "":
		err = notify(ctx, t.Notify, d.Payload)
	case t.Exec != nil:
		err = execute(ctx, d)
	case t.Runbook != nil:
		if dl.Runbooks == nil {
			return errs.Errorf(opDeliver, errs.Invalid, "rule %q: target %d starts runbook %q, but this server runs no runbooks", d.Rule, d.TargetIndex, t.Runbook.Name)
		}
		err = classify(dl.Runbooks.StartRunbook(ctx, t.Runbook.Name, payloadJSON(d.Payload)))
	case t.Incident != nil:
		if dl.Incidents == nil {
			return errs.Errorf(opDeliver, errs.Invalid, "rule %q: target %d opens incidents, but this server records none", d.Rule, d.TargetIndex)
		}
		err = classify(dl.Incidents.OpenIncident(ctx, Incident{
			Rule: d.Rule, Title: d.Title, Severity: t.Incident.Severity, Event: d.Event,
		}))
	default:
		return errs.Errorf(opDeliver, errs.Invalid, "rule %q: target %d has no kind", d.Rule, d.TargetIndex)
	}
	if err != nil {
		return errs.E(opDeliver, errs.KindOf(err), fmt.Errorf("rule %q target %d (%s), event %s: %w", d.Rule, d.TargetIndex, d.Target.Kind(), d.EventID, err))
	}
	return nil
}

// classify gives a caller's error without a kind the kind Unavailable, so that it is
// retried; a canceled context stays Canceled.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errs.KindOf(err) != errs.Other:
		return err
	case errors.Is(err, context.Canceled):
		return errs.E("", errs.Canceled, err)
	}
	return errs.E("", errs.Unavailable, err)
}

// payloadJSON returns p as JSON: as is when it is JSON, else as a JSON string.
func payloadJSON(p []byte) json.RawMessage {
	if json.Valid(p) {
		return p
	}
	return json.RawMessage(jsonText(string(p)))
}

func (dl *Deliverer) webhook(ctx context.Context, d Delivery, secrets SecretLoader) error {
	w := d.Target.Webhook
	timeout := time.Duration(w.Timeout)
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return errs.E("", errs.Invalid, fmt.Errorf("webhook URL: %w", err))
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if !json.Valid(d.Payload) {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	req.Header.Set("User-Agent", "Rewind-Webhook/1")
	req.Header.Set(EventIDHeader, d.EventID)
	req.Header.Set(RuleHeader, d.Rule)
	if w.SecretFile != "" {
		if secrets == nil {
			return errs.Errorf("", errs.Internal, "webhook %s needs its secret but no secret loader was given", w.URL)
		}
		secret, err := secrets.LoadSecret(ctx, w.SecretFile)
		if err != nil {
			return err
		}
		now := time.Now
		if dl.Now != nil {
			now = dl.Now
		}
		req.Header.Set(SignatureHeader, Sign(secret, d.Payload, now()))
	}
	client := dl.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return errs.Errorf("", errs.Unavailable, "POST %s: no answer within %s", w.URL, timeout)
		}
		return errs.E("", errs.Unavailable, fmt.Errorf("POST %s: %w", w.URL, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	msg := fmt.Errorf("POST %s: %s: %s", w.URL, resp.Status, strings.TrimSpace(string(body)))
	switch {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return errs.E("", errs.Unavailable, msg)
	case code >= 300 && code < 400:
		return errs.E("", errs.Invalid, msg).
			WithHint("the receiver redirects to " + resp.Header.Get("Location") + "; configure that URL instead")
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return errs.E("", errs.Unauthorized, msg).
			WithHint("the receiver refused the request: check the secret and any auth headers")
	}
	return errs.E("", errs.Invalid, msg).
		WithHint("the receiver refused this payload; fix the target or the input transformer")
}
