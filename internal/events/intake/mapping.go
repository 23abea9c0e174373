package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/theory/jsonpath"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/rules"
)

const opMap = "intake.Map"

// Mapping turns the JSON body of any webhook into an envelope. Source and DetailType are
// fixed; Detail is a JSONPath (RFC 9535) that selects the detail object in the body ("$",
// the whole body, when empty); Resources optionally selects a string or an array of
// strings; Time optionally selects an RFC 3339 string or Unix seconds (now when empty or
// when it selects nothing).
type Mapping struct {
	Source     string `yaml:"source" json:"source"`
	DetailType string `yaml:"detail_type" json:"detail_type"`
	Detail     string `yaml:"detail,omitempty" json:"detail,omitempty"`
	Resources  string `yaml:"resources,omitempty" json:"resources,omitempty"`
	Time       string `yaml:"time,omitempty" json:"time,omitempty"`
}

type compiledMapping struct {
	detail, resources, time *jsonpath.Path
}

// Validate checks the mapping itself: source and detail-type set, source not reserved,
// paths valid. Map calls it; configuration loading should call it too, to fail early.
func (m Mapping) Validate() error {
	_, err := m.compile()
	return err
}

func (m Mapping) compile() (*compiledMapping, error) {
	bad := func(field, format string, args ...any) error {
		return errs.Errorf("intake.Mapping", errs.Invalid, "webhook mapping: %s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(m.Source) == "":
		return nil, bad("source", "is empty; name the sender, such as my.monitoring")
	case strings.HasPrefix(m.Source, ReservedPrefix):
		return nil, bad("source", "%q starts with %q, which is reserved for events Rewind emits", m.Source, ReservedPrefix)
	case strings.TrimSpace(m.DetailType) == "":
		return nil, bad("detail_type", "is empty; describe the event, such as \"Check Failed\"")
	}
	var c compiledMapping
	for _, f := range []struct {
		field, src string
		dst        **jsonpath.Path
	}{{"detail", m.Detail, &c.detail}, {"resources", m.Resources, &c.resources}, {"time", m.Time, &c.time}} {
		src := f.src
		if src == "" {
			if f.field != "detail" {
				continue
			}
			src = "$"
		}
		if !strings.HasPrefix(src, "$") {
			return nil, bad(f.field, "%q is not a JSONPath: paths start with $, as in $.data", src)
		}
		p, err := jsonpath.Parse(src)
		if err != nil {
			return nil, bad(f.field, "%q is not a valid JSONPath: %s", src, strings.TrimPrefix(err.Error(), "jsonpath: "))
		}
		*f.dst = p
	}
	return &c, nil
}

// Map builds the envelope for one webhook body: a new id, the mapping's source and
// detail-type, and detail, resources and time selected from body. A mapping that is not
// valid, a body that is not JSON, or paths that select the wrong kind of value are
// errs.Invalid errors naming the field.
func (m Mapping) Map(body []byte, now time.Time) (rules.Envelope, error) {
	c, err := m.compile()
	if err != nil {
		return rules.Envelope{}, err
	}
	bad := func(format string, args ...any) (rules.Envelope, error) {
		return rules.Envelope{}, errs.Errorf(opMap, errs.Invalid, "webhook for %s: %s", m.Source, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return bad("the body is not JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("the body has data after the JSON value")
	}
	detail, ok := selectOne(c.detail, doc)
	if !ok {
		return bad("detail path %s selects nothing in the body", c.detail)
	}
	obj, ok := detail.(map[string]any)
	if !ok {
		return bad("detail path %s selects a %s; the detail must be a JSON object", c.detail, kindOf(detail))
	}
	detailJSON, err := json.Marshal(obj)
	if err != nil {
		return bad("detail: %v", err)
	}
	resources := []string{}
	if c.resources != nil {
		for _, v := range c.resources.Select(doc) {
			switch v := v.(type) {
			case string:
				resources = append(resources, v)
			case []any:
				for _, e := range v {
					s, ok := e.(string)
					if !ok {
						return bad("resources path %s selects an array holding a %s; resources are strings", c.resources, kindOf(e))
					}
					resources = append(resources, s)
				}
			default:
				return bad("resources path %s selects a %s; resources are strings", c.resources, kindOf(v))
			}
		}
	}
	t := now
	if c.time != nil {
		if v, ok := selectOne(c.time, doc); ok {
			raw, _ := json.Marshal(v)
			if t, err = parseTime(raw); err != nil {
				return bad("time path %s: %v", c.time, err)
			}
		}
	}
	id, err := newID()
	if err != nil {
		return rules.Envelope{}, err
	}
	return rules.Envelope{
		Version:    rules.EnvelopeVersion,
		ID:         id,
		Source:     m.Source,
		DetailType: m.DetailType,
		Time:       t.UTC(),
		Resources:  resources,
		Detail:     detailJSON,
	}, nil
}

// selectOne returns the first node p selects in doc.
func selectOne(p *jsonpath.Path, doc any) (any, bool) {
	nodes := p.Select(doc)
	if len(nodes) == 0 {
		return nil, false
	}
	return nodes[0], true
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
