package signaltasks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/monitor"
	"github.com/rewind-dr/rewind/internal/runbook"
)

// Resource names.
const (
	EventResource       = "rewind:event"
	NotifyResource      = "rewind:notify"
	WaitHealthyResource = "rewind:wait-healthy"
)

// Error names the tasks fail with; a Catch or Retry can match them.
const (
	ErrInvalidParams = "Rewind.InvalidParameters"
	ErrNotifyFailed  = "Rewind.NotifyFailed" // the notification service refused or could not be reached
	ErrUnhealthy     = "Rewind.Unhealthy"    // the probe never succeeded before the deadline
)

// Defaults and bounds of rewind:wait-healthy.
const (
	DefaultInterval     = 5 * time.Second
	MinInterval         = 100 * time.Millisecond
	DefaultWaitTimeout  = 5 * time.Minute
	DefaultProbeTimeout = 5 * time.Second // capped at half the interval
)

// DefaultNotifyTimeout bounds one notification.
const DefaultNotifyTimeout = 30 * time.Second

// Deps is what the tasks need from the server.
type Deps struct {
	// Store receives the events of rewind:event, in the outbox.
	Store catalog.Store
	// Site is the site recorded in those events (this server's).
	Site string
}

// Register adds rewind:event, rewind:notify and rewind:wait-healthy to reg, replacing the
// local rewind:event that only writes to standard error. All three are idempotent: after a
// crash that left one's outcome unknown it runs again, so an event or a notification may
// be announced twice (at least once, as event buses deliver) and a probe is simply
// repeated.
func Register(reg runbook.Registry, d Deps) {
	reg[EventResource] = runbook.TaskSpec{Run: d.event, Idempotent: true}
	reg[NotifyResource] = runbook.TaskSpec{Run: notify, Idempotent: true}
	reg[WaitHealthyResource] = runbook.TaskSpec{Run: waitHealthy, Idempotent: true}
}

// EventParams are rewind:event's Parameters, as an EventBridge PutEvents entry: the event
// gets source Source (default rewind.runbook; other sources starting with "rewind." are
// reserved), detail-type DetailType, detail Detail (an object, default {}) and resources
// the execution's ID followed by Resources.
type EventParams struct {
	Source     string          `json:"Source,omitempty"`
	DetailType string          `json:"DetailType"`
	Detail     json.RawMessage `json:"Detail,omitempty"`
	Resources  []string        `json:"Resources,omitempty"`
}

// MaxEventSize bounds the detail of an event a runbook emits, as EventBridge bounds an
// entry.
const MaxEventSize = 256 << 10 // bytes

func decode(in runbook.TaskInput, v any, example string) error {
	dec := json.NewDecoder(bytes.NewReader(in.Input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid(in, "Parameters: %v (expected %s)", err, example)
	}
	// encoding/json matches field names without regard to case; a definition is checked
	// exactly, so that "detail" is refused rather than read as Detail.
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(in.Input, &keys) // it decoded as an object above
	t := reflect.TypeOf(v).Elem()
	for k := range keys {
		known := false
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			known = known || name == k
		}
		if !known {
			return invalid(in, "Parameters: unknown field %q (field names are case-sensitive; expected %s)", k, example)
		}
	}
	return nil
}

func invalid(in runbook.TaskInput, format string, a ...any) error {
	return &runbook.TaskError{Name: ErrInvalidParams, Cause: fmt.Sprintf("state %q (%s): ", in.State, in.Resource) + fmt.Sprintf(format, a...)}
}

func (d Deps) event(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p EventParams
	if err := decode(in, &p, `{"DetailType": "Failover Started", "Detail": {"site": "recovery"}, "Resources": ["orders-db"]}`); err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(p.DetailType) == "":
		return nil, invalid(in, "DetailType is required")
	case len(p.DetailType) > 128 || !utf8.ValidString(p.DetailType):
		return nil, invalid(in, "DetailType is longer than 128 bytes or not UTF-8")
	case p.Source == "":
		p.Source = catalog.RunbookEventSource
	case p.Source != catalog.RunbookEventSource && strings.HasPrefix(p.Source, "rewind."):
		return nil, invalid(in, "Source %q starts with \"rewind.\", which is reserved for events Rewind emits; leave Source out for %s", p.Source, catalog.RunbookEventSource)
	}
	detail := bytes.TrimSpace(p.Detail)
	if len(detail) == 0 || string(detail) == "null" {
		detail = []byte("{}")
	}
	if detail[0] != '{' {
		return nil, invalid(in, "Detail must be a JSON object")
	}
	if len(detail) > MaxEventSize {
		return nil, invalid(in, "Detail is larger than %d bytes", MaxEventSize)
	}
	res := append([]string{in.Execution}, p.Resources...)
	e := &catalog.Event{Source: p.Source, DetailType: p.DetailType, Site: d.Site, Resources: res, Detail: json.RawMessage(detail)}
	err := d.Store.Tx(ctx, func(tx catalog.Tx) error { return tx.AppendEvent(ctx, e) })
	if err != nil {
		return nil, err // a catalog failure: States.TaskFailed, which a Retry may match
	}
	return e, nil
}

// NotifyParams are rewind:notify's Parameters: the notification URL, given directly (URL)
// or read from a file when the task runs (URLFile, which keeps a secret such as a webhook
// key out of the definition, and so out of the catalog), the message and an optional title.
type NotifyParams struct {
	URL            string `json:"URL,omitempty"`
	URLFile        string `json:"URLFile,omitempty"`
	Message        string `json:"Message"`
	Title          string `json:"Title,omitempty"`
	TimeoutSeconds int    `json:"TimeoutSeconds,omitempty"`
}

func notify(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p NotifyParams
	if err := decode(in, &p, `{"URL": "ntfy://ntfy.sh/ops", "Message": "failover approved", "Title": "Rewind"}`); err != nil {
		return nil, err
	}
	if (p.URL == "") == (p.URLFile == "") {
		return nil, invalid(in, "give exactly one of URL and URLFile")
	}
	if p.Message == "" {
		return nil, invalid(in, "Message is required")
	}
	if p.TimeoutSeconds < 0 {
		return nil, invalid(in, "TimeoutSeconds must not be negative")
	}
	raw := p.URL
	if p.URLFile != "" {
		b, err := os.ReadFile(p.URLFile)
		if err != nil {
			return nil, invalid(in, "URLFile: %v", err)
		}
		raw = strings.TrimSpace(string(b))
	}
	scheme, _, _ := strings.Cut(raw, "://")
	r, err := router.New(nil, raw)
	if err != nil {
		return nil, invalid(in, "the %s notification URL is not valid: %s", scheme, redact(err.Error(), raw))
	}
	timeout := DefaultNotifyTimeout
	if p.TimeoutSeconds > 0 {
		timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.Timeout = timeout
	params := types.Params{}
	if p.Title != "" {
		params.SetTitle(p.Title)
	}
	// The notification library takes no context: the send runs in a goroutine bounded by
	// the router's timeout, and the task returns when ctx ends.
	done := make(chan []error, 1)
	go func() { done <- r.Send(p.Message, &params) }()
	select {
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return nil, &runbook.TaskError{Name: ErrNotifyFailed, Cause: fmt.Sprintf("the %s notification did not finish within %v", scheme, timeout)}
		}
		return nil, ctx.Err()
	case results := <-done:
		for _, e := range results {
			if e != nil {
				return nil, &runbook.TaskError{Name: ErrNotifyFailed, Cause: fmt.Sprintf("%s notification failed: %s", scheme, redact(e.Error(), raw))}
			}
		}
	}
	return map[string]any{"Sent": true, "Service": scheme}, nil
}

// redact hides a notification URL, which often holds a key, in an error message.
func redact(msg, raw string) string {
	if raw == "" {
		return msg
	}
	return strings.ReplaceAll(msg, raw, "<url>")
}

// Probe names one probe of package monitor, in the JSON of a monitor's spec: exactly one of
// its fields.
type Probe struct {
	HTTP     *monitor.HTTP     `json:"http,omitempty"`
	TCP      *monitor.TCP      `json:"tcp,omitempty"`
	DNS      *monitor.DNS      `json:"dns,omitempty"`
	Command  *monitor.Command  `json:"command,omitempty"`
	Postgres *monitor.Postgres `json:"postgres,omitempty"`
	MySQL    *monitor.MySQL    `json:"mysql,omitempty"`
	Redis    *monitor.Redis    `json:"redis,omitempty"`
}

// WaitHealthyParams are rewind:wait-healthy's Parameters. The target is exactly one of URL
// (an HTTP(S) URL, healthy on ExpectStatus, any 2xx by default, with ExpectBody in the
// body), Address (host:port, healthy when a TCP connection opens) or Probe (any monitor
// probe). It probes every IntervalSeconds (default 5, at least 0.1) until
// HealthyThreshold probes in a row (default 1) are healthy, or fails with Rewind.Unhealthy
// after TimeoutSeconds (default 300). ProbeTimeoutSeconds bounds one probe (default 5, at
// most half the interval).
type WaitHealthyParams struct {
	URL                 string   `json:"URL,omitempty"`
	ExpectStatus        int      `json:"ExpectStatus,omitempty"`
	ExpectBody          string   `json:"ExpectBody,omitempty"`
	Address             string   `json:"Address,omitempty"`
	Probe               *Probe   `json:"Probe,omitempty"`
	IntervalSeconds     *float64 `json:"IntervalSeconds,omitempty"`
	TimeoutSeconds      *float64 `json:"TimeoutSeconds,omitempty"`
	ProbeTimeoutSeconds *float64 `json:"ProbeTimeoutSeconds,omitempty"`
	HealthyThreshold    int      `json:"HealthyThreshold,omitempty"`
}

// WaitHealthyOutput is rewind:wait-healthy's result.
type WaitHealthyOutput struct {
	Healthy        bool    `json:"Healthy"`
	Probes         int     `json:"Probes"`
	ElapsedSeconds float64 `json:"ElapsedSeconds"`
	Detail         string  `json:"Detail"` // what the last probe saw ("HTTP 200")
}

func seconds(v *float64, def time.Duration) (time.Duration, bool) {
	if v == nil {
		return def, true
	}
	if math.IsNaN(*v) || *v <= 0 || *v > 365*24*3600 {
		return 0, false
	}
	return time.Duration(*v * float64(time.Second)), true
}

// spec builds the monitor spec of the parameters, or says what is wrong.
func (p WaitHealthyParams) spec() (monitor.Spec, time.Duration, int, error) {
	var s monitor.Spec
	n := 0
	if p.URL != "" {
		n++
		s.HTTP = &monitor.HTTP{URL: p.URL, ExpectStatus: p.ExpectStatus, ExpectBody: p.ExpectBody}
	} else if p.ExpectStatus != 0 || p.ExpectBody != "" {
		return s, 0, 0, fmt.Errorf("ExpectStatus and ExpectBody go with URL")
	}
	if p.Address != "" {
		n++
		s.TCP = &monitor.TCP{Address: p.Address}
	}
	if p.Probe != nil {
		n++
		s.HTTP, s.TCP, s.DNS, s.Command = p.Probe.HTTP, p.Probe.TCP, p.Probe.DNS, p.Probe.Command
		s.Postgres, s.MySQL, s.Redis = p.Probe.Postgres, p.Probe.MySQL, p.Probe.Redis
	}
	if n != 1 {
		return s, 0, 0, fmt.Errorf("give exactly one of URL, Address and Probe")
	}
	interval, ok := seconds(p.IntervalSeconds, DefaultInterval)
	if !ok || interval < MinInterval {
		return s, 0, 0, fmt.Errorf("IntervalSeconds must be at least %v", MinInterval.Seconds())
	}
	timeout, ok := seconds(p.TimeoutSeconds, DefaultWaitTimeout)
	if !ok {
		return s, 0, 0, fmt.Errorf("TimeoutSeconds must be positive")
	}
	probeTimeout, ok := seconds(p.ProbeTimeoutSeconds, DefaultProbeTimeout)
	if !ok {
		return s, 0, 0, fmt.Errorf("ProbeTimeoutSeconds must be positive")
	}
	if p.HealthyThreshold < 0 {
		return s, 0, 0, fmt.Errorf("HealthyThreshold must not be negative")
	}
	threshold := max(p.HealthyThreshold, 1)
	s.Every = interval
	s.Timeout = min(probeTimeout, interval/2)
	return s, timeout, threshold, nil
}

func waitHealthy(ctx context.Context, in runbook.TaskInput) (any, error) {
	var p WaitHealthyParams
	if err := decode(in, &p, `{"URL": "http://127.0.0.1:8081/health", "IntervalSeconds": 5, "TimeoutSeconds": 300}`); err != nil {
		return nil, err
	}
	spec, timeout, threshold, err := p.spec()
	if err != nil {
		return nil, invalid(in, "%v", err)
	}
	m, err := monitor.New(in.State, spec)
	if err != nil {
		return nil, invalid(in, "%v", err)
	}
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(spec.Every)
	defer tick.Stop()
	probes, inRow := 0, 0
	var last monitor.Sample
	for {
		last = m.Probe(ctx)
		probes++
		if last.Healthy {
			inRow++
		} else {
			inRow = 0
		}
		if inRow >= threshold {
			return WaitHealthyOutput{Healthy: true, Probes: probes, ElapsedSeconds: time.Since(start).Seconds(), Detail: last.Detail}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, &runbook.TaskError{Name: ErrUnhealthy, Cause: fmt.Sprintf("not healthy after %v (%d probes); the last probe: %s", timeout, probes, last.Detail)}
		case <-tick.C:
		}
	}
}
