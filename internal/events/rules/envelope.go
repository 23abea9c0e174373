package rules

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Envelope is one event in the EventBridge-style shape Rewind uses everywhere: the JSON
// has the same field names as the catalog's event outbox, with site in the place of
// EventBridge's region. Detail is a JSON object.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Time       time.Time       `json:"time"`
	Site       string          `json:"site"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// EnvelopeVersion is the only envelope version, as in EventBridge.
const EnvelopeVersion = "0"

// MarshalJSON encodes the envelope with EventBridge's defaults filled in: version "0"
// when empty, resources [] rather than null, detail {} when empty, and the time in UTC.
// A detail that is not a JSON object is an errs.Invalid error.
func (e Envelope) MarshalJSON() ([]byte, error) {
	type plain Envelope
	p := plain(e)
	if p.Version == "" {
		p.Version = EnvelopeVersion
	}
	if p.Resources == nil {
		p.Resources = []string{}
	}
	if len(bytes.TrimSpace(p.Detail)) == 0 {
		p.Detail = json.RawMessage("{}")
	} else if !isJSONObject(p.Detail) {
		return nil, errs.Errorf("rules.Envelope", errs.Invalid, "event %s: detail is not a JSON object", e.ID).
			WithHint("an event's detail must be a JSON object such as {\"state\": \"FAILED\"}")
	}
	p.Time = p.Time.UTC()
	return json.Marshal(p)
}

// isJSONObject reports whether b is exactly one valid JSON object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}
