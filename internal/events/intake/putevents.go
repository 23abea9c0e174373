package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

// Limits of a PutEvents request, as EventBridge's.
const (
	MaxEntries   = 10        // entries per request
	MaxEntrySize = 256 << 10 // bytes per entry, counted as EventBridge counts them
	// ReservedPrefix starts the sources of events Rewind emits itself; outside callers may
	// not use it.
	ReservedPrefix = "rewind."
)

// Per-entry error codes, as PutEvents reports them.
const (
	CodeInvalidArgument = "InvalidArgument"
	CodeMalformedDetail = "MalformedDetail"
	CodeTooLarge        = "EntryTooLarge"
	CodeReservedSource  = "NotAuthorizedForSourceException"
)

const opPutEvents = "intake.ParsePutEvents"

// Entry is one accepted entry of a PutEvents request: its position and its envelope.
type Entry struct {
	Index    int
	Envelope rules.Envelope
}

// EntryError is one refused entry: its position, a PutEvents error code and a message.
type EntryError struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Response is the PutEvents response: FailedEntryCount and, in request order, each entry's
// EventId or its ErrorCode and ErrorMessage.
type Response struct {
	FailedEntryCount int             `json:"FailedEntryCount"`
	Entries          []ResponseEntry `json:"Entries"`
}

// ResponseEntry is one entry of a Response.
type ResponseEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// NewResponse builds the PutEvents response for what ParsePutEvents returned.
func NewResponse(entries []Entry, failed []EntryError) Response {
	r := Response{FailedEntryCount: len(failed), Entries: make([]ResponseEntry, len(entries)+len(failed))}
	for _, e := range entries {
		if e.Index >= 0 && e.Index < len(r.Entries) {
			r.Entries[e.Index] = ResponseEntry{EventID: e.Envelope.ID}
		}
	}
	for _, f := range failed {
		if f.Index >= 0 && f.Index < len(r.Entries) {
			r.Entries[f.Index] = ResponseEntry{ErrorCode: f.Code, ErrorMessage: f.Message}
		}
	}
	return r
}

// ParsePutEvents parses a PutEvents request body. It accepts EventBridge's shape,
// {"Entries": [{"Source", "DetailType", "Detail" (a JSON object in a string), "Resources",
// "Time"}]}, where an entry may also be written in Rewind's envelope shape (source,
// detail-type, detail as an object, resources, time, site); a bare Rewind envelope or a
// JSON array of them is accepted too. Each good entry becomes an envelope with a new id
// and its Time, or now. Entries with problems are returned as EntryErrors (the others are
// still accepted, as PutEvents does); the error is an errs.Invalid one for a request that
// is not JSON, has no entries or more than MaxEntries.
func ParsePutEvents(body []byte, now time.Time) ([]Entry, []EntryError, error) {
	raws, err := splitEntries(body)
	if err != nil {
		return nil, nil, err
	}
	var entries []Entry
	var failed []EntryError
	for i, raw := range raws {
		env, code, msg := parseEntry(raw, now)
		if code != "" {
			failed = append(failed, EntryError{Index: i, Code: code, Message: msg})
			continue
		}
		if env.ID, err = newID(); err != nil {
			return nil, nil, err
		}
		entries = append(entries, Entry{Index: i, Envelope: env})
	}
	return entries, failed, nil
}

func splitEntries(body []byte) ([]json.RawMessage, error) {
	hint := `send {"Entries": [{"Source": "my.app", "DetailType": "Thing Happened", "Detail": "{\"id\": 1}"}]}`
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) {
		return nil, errs.Errorf(opPutEvents, errs.Invalid, "the request body is not valid JSON").WithHint(hint)
	}
	var raws []json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, errs.Errorf(opPutEvents, errs.Invalid, "the request body: %v", err).WithHint(hint)
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &top); err != nil {
			return nil, errs.Errorf(opPutEvents, errs.Invalid, "the request body: %v", err).WithHint(hint)
		}
		list, ok := top["Entries"]
		if !ok {
			raws = []json.RawMessage{trimmed}
			break
		}
		if err := json.Unmarshal(list, &raws); err != nil || raws == nil {
			return nil, errs.Errorf(opPutEvents, errs.Invalid, "Entries must be an array of entries").WithHint(hint)
		}
	default:
		return nil, errs.Errorf(opPutEvents, errs.Invalid, "the request body must be a JSON object or array").WithHint(hint)
	}
	switch {
	case len(raws) == 0:
		return nil, errs.Errorf(opPutEvents, errs.Invalid, "the request has no entries").WithHint(hint)
	case len(raws) > MaxEntries:
		return nil, errs.Errorf(opPutEvents, errs.Invalid, "the request has %d entries, at most %d are allowed", len(raws), MaxEntries).
			WithHint(fmt.Sprintf("send the events in batches of %d", MaxEntries))
	}
	return raws, nil
}

// entryKeys maps every accepted key to its field, for both shapes.
var entryKeys = map[string]string{
	"Source": "source", "DetailType": "detail-type", "Detail": "detail", "Resources": "resources",
	"Time": "time", "EventBusName": "bus", "TraceHeader": "trace",
	"source": "source", "detail-type": "detail-type", "detail": "detail", "resources": "resources",
	"time": "time", "site": "site", "version": "version", "id": "id",
	"account": "account", "region": "region",
}

// parseEntry validates one entry; code is "" when it is good.
func parseEntry(raw json.RawMessage, now time.Time) (env rules.Envelope, code, msg string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return env, CodeInvalidArgument, "the entry is not a JSON object"
	}
	f := map[string]json.RawMessage{}
	for k, v := range m {
		name, ok := entryKeys[k]
		if !ok {
			return env, CodeInvalidArgument, fmt.Sprintf("unknown field %q", k)
		}
		if _, dup := f[name]; dup {
			return env, CodeInvalidArgument, fmt.Sprintf("field %q is given twice, in both shapes", k)
		}
		f[name] = v
	}
	var source, detailType, site, region, version string
	for _, s := range []struct {
		name string
		dst  *string
	}{{"source", &source}, {"detail-type", &detailType}, {"site", &site}, {"region", &region}, {"version", &version}} {
		if v, ok := f[s.name]; ok {
			if err := json.Unmarshal(v, s.dst); err != nil {
				return env, CodeInvalidArgument, fmt.Sprintf("%s must be a string", s.name)
			}
		}
	}
	if site == "" {
		site = region
	}
	switch {
	case strings.TrimSpace(source) == "":
		return env, CodeInvalidArgument, "Source is missing or empty"
	case strings.TrimSpace(detailType) == "":
		return env, CodeInvalidArgument, "DetailType is missing or empty"
	case strings.HasPrefix(source, ReservedPrefix):
		return env, CodeReservedSource, fmt.Sprintf("source %q: sources starting with %q are reserved for events Rewind emits", source, ReservedPrefix)
	case version != "" && version != rules.EnvelopeVersion:
		return env, CodeInvalidArgument, fmt.Sprintf("version %q is not supported; the only version is %q", version, rules.EnvelopeVersion)
	}
	detail, ok := f["detail"]
	if !ok {
		return env, CodeInvalidArgument, "Detail is missing; send {} for an event without detail"
	}
	var detailText string
	if json.Unmarshal(detail, &detailText) == nil {
		detail = json.RawMessage(detailText)
	}
	detail = bytes.TrimSpace(detail)
	if len(detail) == 0 || detail[0] != '{' || !json.Valid(detail) {
		return env, CodeMalformedDetail, "Detail is not a JSON object"
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, detail); err != nil {
		return env, CodeMalformedDetail, "Detail is not a JSON object"
	}
	var resources []string
	if v, ok := f["resources"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &resources); err != nil {
			return env, CodeInvalidArgument, "Resources must be an array of strings"
		}
	}
	t := now
	if v, ok := f["time"]; ok && string(v) != "null" {
		var err error
		if t, err = parseTime(v); err != nil {
			return env, CodeInvalidArgument, err.Error()
		}
	}
	size := len(source) + len(detailType) + compact.Len()
	if _, ok := f["time"]; ok {
		size += 14
	}
	for _, r := range resources {
		size += len(r)
	}
	if size > MaxEntrySize {
		return env, CodeTooLarge, fmt.Sprintf("the entry is %d bytes, more than the %d allowed", size, MaxEntrySize)
	}
	if resources == nil {
		resources = []string{}
	}
	return rules.Envelope{
		Version:    rules.EnvelopeVersion,
		Source:     source,
		DetailType: detailType,
		Time:       t.UTC(),
		Site:       site,
		Resources:  resources,
		Detail:     compact.Bytes(),
	}, "", ""
}

// parseTime accepts an RFC 3339 string or Unix seconds (what AWS SDKs send).
func parseTime(v json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("field Time %q is not an RFC 3339 time such as 2026-03-14T09:26:53Z", s)
		}
		return t, nil
	}
	var sec float64
	if err := json.Unmarshal(v, &sec); err != nil || math.IsNaN(sec) || sec < 0 || sec > 1e11 {
		return time.Time{}, fmt.Errorf("field Time must be an RFC 3339 string or Unix seconds")
	}
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9)), nil
}

func newID() (string, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return "", errs.E("intake.newID", errs.Internal, fmt.Errorf("cannot make an event id: %w", err))
	}
	return id.String(), nil
}
