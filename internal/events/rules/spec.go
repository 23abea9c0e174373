package rules

import (
	"encoding/json"
	"fmt"
	"time"
)

// RuleSpec is one rule as written in the configuration (YAML or JSON), before Compile
// validates it. Pattern is an EventBridge event pattern: a decoded object (what a YAML or
// JSON decoder produces for a mapping), or its JSON text as a string, []byte or
// json.RawMessage.
type RuleSpec struct {
	Pattern          any              `yaml:"pattern" json:"pattern"`
	Description      string           `yaml:"description,omitempty" json:"description,omitempty"`
	Targets          []TargetSpec     `yaml:"targets" json:"targets"`
	InputTransformer *TransformerSpec `yaml:"input_transformer,omitempty" json:"input_transformer,omitempty"`
	Retry            *RetrySpec       `yaml:"retry,omitempty" json:"retry,omitempty"`
	Disabled         bool             `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}

// TargetSpec is one target of a rule. Exactly one of Webhook, Notify, Exec, Runbook and
// Incident is set. InputTransformer and Retry, when set, replace the rule's for this
// target (Retry field by field: an unset field keeps the rule's value).
type TargetSpec struct {
	Webhook          *WebhookSpec     `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	Notify           string           `yaml:"notify,omitempty" json:"notify,omitempty"`
	Exec             *ExecSpec        `yaml:"exec,omitempty" json:"exec,omitempty"`
	Runbook          *RunbookSpec     `yaml:"runbook,omitempty" json:"runbook,omitempty"`
	Incident         *IncidentSpec    `yaml:"incident,omitempty" json:"incident,omitempty"`
	InputTransformer *TransformerSpec `yaml:"input_transformer,omitempty" json:"input_transformer,omitempty"`
	Retry            *RetrySpec       `yaml:"retry,omitempty" json:"retry,omitempty"`
}

// Kind names the kind of target that is set: "webhook", "notify", "exec", "runbook",
// "incident", or "" when none is.
func (t TargetSpec) Kind() string {
	if k := t.kinds(); len(k) == 1 {
		return k[0]
	}
	return ""
}

func (t TargetSpec) kinds() []string {
	var k []string
	if t.Webhook != nil {
		k = append(k, "webhook")
	}
	if t.Notify != "" {
		k = append(k, "notify")
	}
	if t.Exec != nil {
		k = append(k, "exec")
	}
	if t.Runbook != nil {
		k = append(k, "runbook")
	}
	if t.Incident != nil {
		k = append(k, "incident")
	}
	return k
}

// WebhookSpec posts the payload to URL. When SecretFile is set, the request carries a
// Rewind-Signature header made with the secret read from that file. Headers are added to
// every request. Timeout defaults to DefaultWebhookTimeout.
type WebhookSpec struct {
	URL        string            `yaml:"url" json:"url"`
	SecretFile string            `yaml:"secret_file,omitempty" json:"secret_file,omitempty"`
	Headers    map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Timeout    Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// ExecSpec runs a local command. An argument that is a JSONPath ($.detail.jobId) is
// replaced by the value it selects in the event; the payload is written to standard input.
// Env adds variables to the command's small environment; Dir is its working directory.
// Timeout defaults to DefaultExecTimeout.
type ExecSpec struct {
	Command []string          `yaml:"command" json:"command"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Dir     string            `yaml:"dir,omitempty" json:"dir,omitempty"`
	Timeout Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// RunbookSpec starts the named runbook with the payload as its input.
type RunbookSpec struct {
	Name string `yaml:"name" json:"name"`
}

// IncidentSpec opens an incident record. Title may hold <name> placeholders: the input
// transformer's variables, the predefined ones, and <source>, <detail-type>, <id>,
// <time>, <site>, <resource> (the first resource) and <resources> (all, comma-separated).
// Severity is critical, high, medium (the default) or low.
type IncidentSpec struct {
	Title    string `yaml:"title" json:"title"`
	Severity string `yaml:"severity,omitempty" json:"severity,omitempty"`
}

// TransformerSpec is an EventBridge input transformer: Paths (InputPathsMap) names up to
// 100 JSONPath values of the event, Template (InputTemplate) uses them as <name>.
type TransformerSpec struct {
	Paths    map[string]string `yaml:"paths,omitempty" json:"paths,omitempty"`
	Template string            `yaml:"template" json:"template"`
}

// RetrySpec bounds the retries of a delivery, as EventBridge's retry policy:
// MaxAttempts is the number of retries after the first attempt (0 to 185) and MaxAge the
// age of the event after which it is not retried (1m to 24h).
type RetrySpec struct {
	MaxAttempts *int     `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	MaxAge      Duration `yaml:"max_age,omitempty" json:"max_age,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("30s", "24h") in YAML and
// JSON. A bare number is refused because its unit would be a guess.
type Duration time.Duration

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, such as 30s, 5m or 24h", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON accepts a JSON string holding a Go duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s must be a string with a unit, such as \"30s\" or \"24h\"", b)
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalYAML accepts a YAML scalar holding a Go duration. It uses the decoder-function
// form that YAML libraries support so that this package does not import one.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("duration %v must have a unit, such as 30s, 5m or 24h", v)
	}
	return d.UnmarshalText([]byte(s))
}
