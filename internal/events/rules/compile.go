package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/pattern"
)

const opCompile = "rules.Compile"

// Limits and defaults of rules and targets.
const (
	MaxTargets            = 5 // per rule, as EventBridge
	MaxNameLen            = 64
	DefaultWebhookTimeout = 10 * time.Second
	DefaultExecTimeout    = time.Minute
	MaxTargetTimeout      = 15 * time.Minute
	DefaultSeverity       = "medium"
)

// Severities are the incident severities, most severe first.
var Severities = []string{"critical", "high", "medium", "low"}

// Rule is a compiled rule. It is immutable and safe for concurrent use.
type Rule struct {
	name     string
	pattern  *pattern.Pattern
	disabled bool
	targets  []target
}

// target is a compiled target: its spec with defaults filled in, and what Match needs.
type target struct {
	spec  TargetSpec
	tr    *transformer // nil: the payload is the whole event
	retry RetryPolicy
	title *template // incident targets
	args  []execArg // exec targets
}

// execArg is one exec argument: a literal, or a JSONPath into the event.
type execArg struct {
	lit  string
	path *jpath
}

// Name returns the rule's name.
func (r *Rule) Name() string { return r.name }

// Disabled reports whether the rule is disabled; a Set never matches a disabled rule.
func (r *Rule) Disabled() bool { return r.disabled }

// Targets returns the rule's targets with their defaults filled in.
func (r *Rule) Targets() []TargetSpec {
	out := make([]TargetSpec, len(r.targets))
	for i := range r.targets {
		out[i] = r.targets[i].spec
	}
	return out
}

// Compile validates spec and compiles it into the rule called name. Every problem is an
// errs.Invalid error that names the rule and the field (rule "x": targets[1].webhook.url:
// ...) and says what to write instead; pattern errors are the pattern package's, wrapped.
// Compile does not read secret files or reach any target. It is safe for concurrent use.
func Compile(name string, spec RuleSpec) (*Rule, error) {
	bad := func(field string, err error) error {
		e := errs.E(opCompile, errs.Invalid, fmt.Errorf("rule %q: %w", name, under(field, err)))
		if h := errs.HintOf(err); h != "" {
			e.Hint = h
		}
		return e
	}
	if err := checkRuleName(name); err != nil {
		return nil, errs.E(opCompile, errs.Invalid, err).
			WithHint("rule names are 1 to 64 letters, digits, '.', '-' or '_'")
	}
	raw, err := patternJSON(spec.Pattern)
	if err != nil {
		return nil, bad("pattern", err)
	}
	pat, err := pattern.Compile(raw)
	if err != nil {
		return nil, bad("pattern", err)
	}
	r := &Rule{name: name, pattern: pat, disabled: spec.Disabled}
	switch {
	case len(spec.Targets) == 0:
		return nil, bad("targets", fmt.Errorf("the rule has no targets; add at least one (webhook, notify, exec, runbook or incident)"))
	case len(spec.Targets) > MaxTargets:
		return nil, bad("targets", fmt.Errorf("%d targets, at most %d are allowed; split the rule in two", len(spec.Targets), MaxTargets))
	}
	var ruleTr *transformer
	if spec.InputTransformer != nil {
		if ruleTr, err = compileTransformer(spec.InputTransformer); err != nil {
			return nil, bad("input_transformer", err)
		}
	}
	ruleRetry, err := resolveRetry(DefaultRetryPolicy, spec.Retry)
	if err != nil {
		return nil, bad("retry", err)
	}
	for i, ts := range spec.Targets {
		field := fmt.Sprintf("targets[%d]", i)
		t, err := compileTarget(ts, ruleTr, ruleRetry)
		if err != nil {
			return nil, bad(field, err)
		}
		r.targets = append(r.targets, t)
	}
	return r, nil
}

// fieldError carries the name of the field a problem is in, relative to its parent.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func fieldErr(field string, err error) error { return &fieldError{field: field, err: err} }

// under prefixes the field of err with parent: an error naming field f becomes one naming
// parent.f, any other error one naming parent.
func under(parent string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return &fieldError{field: parent + "." + fe.field, err: fe.err}
	}
	return &fieldError{field: parent, err: err}
}

func checkRuleName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("rule name %q must be 1 to %d characters long", name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("rule name %q may hold only letters, digits, '.', '-' and '_'", name)
		}
	}
	return nil
}

// patternJSON turns the configured pattern into JSON text for pattern.Compile.
func patternJSON(p any) ([]byte, error) {
	switch p := p.(type) {
	case nil:
		return nil, fmt.Errorf("is missing; a rule needs an event pattern such as {source: [rewind.backup]}")
	case json.RawMessage:
		return p, nil
	case []byte:
		return p, nil
	case string:
		return []byte(p), nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("cannot be written as JSON (%v); use string keys and plain values", err)
	}
	return b, nil
}

func resolveRetry(base RetryPolicy, spec *RetrySpec) (RetryPolicy, error) {
	if spec == nil {
		return base, nil
	}
	p := base
	if spec.MaxAttempts != nil {
		n := *spec.MaxAttempts
		if n < 0 || n > DefaultMaxAttempts {
			return p, fieldErr("max_attempts", fmt.Errorf("%d is out of range; write 0 (no retries) to %d", n, DefaultMaxAttempts))
		}
		p.MaxAttempts = n
		if n == 0 {
			p.MaxAttempts = NoRetry
		}
	}
	if spec.MaxAge != 0 {
		age := time.Duration(spec.MaxAge)
		if age < MinMaxAge || age > DefaultMaxAge {
			return p, fieldErr("max_age", fmt.Errorf("%s is out of range; write 1m to 24h", age))
		}
		p.MaxAge = age
	}
	return p, nil
}

func compileTarget(ts TargetSpec, ruleTr *transformer, ruleRetry RetryPolicy) (target, error) {
	t := target{spec: ts, tr: ruleTr}
	switch kinds := ts.kinds(); len(kinds) {
	case 0:
		return t, fmt.Errorf("sets no target; write exactly one of webhook, notify, exec, runbook or incident")
	case 1:
	default:
		return t, fmt.Errorf("sets %s; a target is exactly one of webhook, notify, exec, runbook or incident, write one target per entry", strings.Join(kinds, " and "))
	}
	if ts.InputTransformer != nil {
		tr, err := compileTransformer(ts.InputTransformer)
		if err != nil {
			return t, under("input_transformer", err)
		}
		t.tr = tr
	}
	retry, err := resolveRetry(ruleRetry, ts.Retry)
	if err != nil {
		return t, under("retry", err)
	}
	t.retry = retry
	switch {
	case ts.Webhook != nil:
		w := *ts.Webhook
		if err := checkWebhook(&w); err != nil {
			return t, under("webhook", err)
		}
		t.spec.Webhook = &w
	case ts.Notify != "":
		if err := checkNotify(ts.Notify); err != nil {
			return t, fieldErr("notify", err)
		}
	case ts.Exec != nil:
		e := *ts.Exec
		args, err := compileExec(&e)
		if err != nil {
			return t, under("exec", err)
		}
		t.spec.Exec, t.args = &e, args
	case ts.Runbook != nil:
		if err := checkRuleName(ts.Runbook.Name); err != nil {
			return t, fieldErr("runbook.name", fmt.Errorf("%s", strings.Replace(err.Error(), "rule name", "runbook name", 1)))
		}
	case ts.Incident != nil:
		inc := *ts.Incident
		if strings.TrimSpace(inc.Title) == "" {
			return t, fieldErr("incident.title", fmt.Errorf("is empty; an incident needs a title such as \"Backup of <resource> failed\""))
		}
		if inc.Severity == "" {
			inc.Severity = DefaultSeverity
		}
		if !slices.Contains(Severities, inc.Severity) {
			return t, fieldErr("incident.severity", fmt.Errorf("%q is not a severity; write one of %s", inc.Severity, strings.Join(Severities, ", ")))
		}
		title, err := parseTemplate(inc.Title, func(n string) bool {
			return (t.tr != nil && t.tr.paths[n] != nil) || predefined[n] != "" || slices.Contains(titleBuiltins, n)
		})
		if err != nil {
			return t, fieldErr("incident.title", fmt.Errorf("%w (defined: %s)", err, t.tr.knownNames(titleBuiltins)))
		}
		title.json = false
		t.spec.Incident, t.title = &inc, title
	}
	return t, nil
}

// reservedHeaders are set by the webhook target itself.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", SignatureHeader, EventIDHeader, RuleHeader}

func checkWebhook(w *WebhookSpec) error {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		return fieldErr("url", fmt.Errorf("is empty; write the receiver's address, such as https://ops.example/hook"))
	case err != nil:
		return fieldErr("url", fmt.Errorf("%q is not a URL: %v", w.URL, err))
	case u.Scheme != "http" && u.Scheme != "https":
		return fieldErr("url", fmt.Errorf("%q must start with https:// or http://", w.URL))
	case u.Host == "":
		return fieldErr("url", fmt.Errorf("%q has no host", w.URL))
	}
	for k := range w.Headers {
		if !validHeaderName(k) {
			return fieldErr("headers", fmt.Errorf("%q is not a valid HTTP header name", k))
		}
		for _, r := range reservedHeaders {
			if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(r) {
				return fieldErr("headers", fmt.Errorf("%q is set by Rewind and cannot be configured", k))
			}
		}
		if strings.ContainsAny(w.Headers[k], "\r\n\x00") {
			return fieldErr("headers", fmt.Errorf("the value of %q holds a line break or NUL", k))
		}
	}
	if w.SecretFile != "" && !strings.HasPrefix(w.SecretFile, "/") {
		return fieldErr("secret_file", fmt.Errorf("%q must be an absolute path", w.SecretFile))
	}
	to, err := checkTimeout(w.Timeout, DefaultWebhookTimeout)
	if err != nil {
		return fieldErr("timeout", err)
	}
	w.Timeout = to
	return nil
}

func checkTimeout(d Duration, def time.Duration) (Duration, error) {
	switch {
	case d == 0:
		return Duration(def), nil
	case d < 0 || time.Duration(d) > MaxTargetTimeout:
		return d, fmt.Errorf("%s is out of range; write a positive duration up to %s", time.Duration(d), MaxTargetTimeout)
	}
	return d, nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// checkNotify validates a notification URL by letting the notification library parse
// it. The URL is not repeated in the error because it usually holds a token.
func checkNotify(raw string) error {
	scheme, _, _ := strings.Cut(raw, "://")
	if _, err := router.New(nil, raw); err != nil {
		return fmt.Errorf("the %q notification URL is not valid: %v", scheme, redact(err.Error(), raw))
	}
	return nil
}

// redact removes the secret parts of a URL from a message.
func redact(msg, raw string) string {
	msg = strings.ReplaceAll(msg, raw, "<url>")
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "***")
		}
	}
	return msg
}

func compileExec(e *ExecSpec) ([]execArg, error) {
	if len(e.Command) == 0 || strings.TrimSpace(e.Command[0]) == "" {
		return nil, fieldErr("command", fmt.Errorf("is empty; write the program and its arguments, such as [/usr/local/bin/page-oncall, $.detail.jobId]"))
	}
	args := make([]execArg, 0, len(e.Command)-1)
	for i, a := range e.Command {
		if strings.ContainsRune(a, 0) {
			return nil, fieldErr(fmt.Sprintf("command[%d]", i), fmt.Errorf("holds a NUL byte"))
		}
		if i == 0 {
			continue
		}
		if a == "$" || strings.HasPrefix(a, "$.") || strings.HasPrefix(a, "$[") {
			p, err := compilePath(a)
			if err != nil {
				return nil, fieldErr(fmt.Sprintf("command[%d]", i), err)
			}
			args = append(args, execArg{path: p})
			continue
		}
		args = append(args, execArg{lit: a})
	}
	for k := range e.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fieldErr("env", fmt.Errorf("%q is not a valid environment variable name", k))
		}
	}
	if e.Dir != "" && !strings.HasPrefix(e.Dir, "/") {
		return nil, fieldErr("dir", fmt.Errorf("%q must be an absolute path", e.Dir))
	}
	to, err := checkTimeout(e.Timeout, DefaultExecTimeout)
	if err != nil {
		return nil, fieldErr("timeout", err)
	}
	e.Timeout = to
	return args, nil
}
