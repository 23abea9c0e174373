package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// The envelope fields of Alertmanager events.
const (
	AlertmanagerSource     = "alertmanager"
	AlertmanagerDetailType = "Alertmanager Alert"
	AlertmanagerVersion    = "4" // the only webhook payload version Alertmanager sends
)

const opAlertmanager = "intake.ParseAlertmanager"

type amPayload struct {
	Version      *string           `json:"version"`
	GroupKey     string            `json:"groupKey"`
	Receiver     *string           `json:"receiver"`
	Status       *string           `json:"status"`
	Alerts       *[]amAlert        `json:"alerts"`
	GroupLabels  map[string]string `json:"groupLabels"`
	CommonLabels map[string]string `json:"commonLabels"`
	ExternalURL  string            `json:"externalURL"`
}

type amAlert struct {
	Status       *string           `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     *string           `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertDetail is the detail of an Alertmanager event.
type AlertDetail struct {
	Status       string            `json:"status"`
	AlertName    string            `json:"alertname"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt,omitempty"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Receiver     string            `json:"receiver"`
}

// ParseAlertmanager parses an Alertmanager webhook notification (payload version "4")
// into one envelope per alert: source "alertmanager", detail-type "Alertmanager Alert",
// an AlertDetail as detail, the alert's instance label (when present) as the resource,
// and as time the alert's startsAt when it fires or endsAt when it is resolved (now when
// that is unset). The payload is checked strictly: another version, a missing receiver,
// status or alerts list, a status other than firing or resolved, or a time that is not
// RFC 3339 is an errs.Invalid error that names the field.
func ParseAlertmanager(body []byte, now time.Time) ([]rules.Envelope, error) {
	hint := "point an Alertmanager webhook_configs receiver at this endpoint; it sends payload version 4"
	bad := func(format string, args ...any) error {
		return errs.Errorf(opAlertmanager, errs.Invalid, "Alertmanager payload: "+format, args...).WithHint(hint)
	}
	var p amPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return nil, bad("not a webhook notification: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad("data after the JSON object")
	}
	switch {
	case p.Version == nil:
		return nil, bad("version is missing")
	case *p.Version != AlertmanagerVersion:
		return nil, bad("version %q is not supported, only %q", *p.Version, AlertmanagerVersion)
	case p.Receiver == nil:
		return nil, bad("receiver is missing")
	case p.Status == nil:
		return nil, bad("status is missing")
	case *p.Status != "firing" && *p.Status != "resolved":
		return nil, bad("status %q is neither firing nor resolved", *p.Status)
	case p.Alerts == nil:
		return nil, bad("alerts is missing")
	}
	out := make([]rules.Envelope, 0, len(*p.Alerts))
	for i, a := range *p.Alerts {
		switch {
		case a.Status == nil:
			return nil, bad("alerts[%d].status is missing", i)
		case *a.Status != "firing" && *a.Status != "resolved":
			return nil, bad("alerts[%d].status %q is neither firing nor resolved", i, *a.Status)
		case a.Labels == nil:
			return nil, bad("alerts[%d].labels is missing", i)
		case a.StartsAt == nil:
			return nil, bad("alerts[%d].startsAt is missing", i)
		}
		starts, err := time.Parse(time.RFC3339Nano, *a.StartsAt)
		if err != nil {
			return nil, bad("alerts[%d].startsAt %q is not an RFC 3339 time", i, *a.StartsAt)
		}
		var ends time.Time
		if a.EndsAt != "" {
			if ends, err = time.Parse(time.RFC3339Nano, a.EndsAt); err != nil {
				return nil, bad("alerts[%d].endsAt %q is not an RFC 3339 time", i, a.EndsAt)
			}
		}
		at := starts
		if *a.Status == "resolved" {
			at = ends
		}
		if at.IsZero() || at.Year() <= 1 {
			at = now
		}
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		endsAt := a.EndsAt
		if ends.Year() <= 1 {
			endsAt = "" // Alertmanager's zero time means "not ended"
		}
		detail, err := json.Marshal(AlertDetail{
			Status:       *a.Status,
			AlertName:    a.Labels["alertname"],
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			StartsAt:     *a.StartsAt,
			EndsAt:       endsAt,
			Fingerprint:  a.Fingerprint,
			GeneratorURL: a.GeneratorURL,
			Receiver:     *p.Receiver,
		})
		if err != nil {
			return nil, errs.E(opAlertmanager, errs.Internal, fmt.Errorf("alerts[%d]: %w", i, err))
		}
		resources := []string{}
		if inst := a.Labels["instance"]; inst != "" {
			resources = append(resources, inst)
		}
		id, err := newID()
		if err != nil {
			return nil, err
		}
		out = append(out, rules.Envelope{
			Version:    rules.EnvelopeVersion,
			ID:         id,
			Source:     AlertmanagerSource,
			DetailType: AlertmanagerDetailType,
			Time:       at.UTC(),
			Resources:  resources,
			Detail:     detail,
		})
	}
	return out, nil
}
