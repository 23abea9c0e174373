package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/theory/jsonpath"
)

// jpath is a compiled JSONPath (RFC 9535) into an event. EventBridge writes member names
// with hyphens in dot notation ($.detail-type), which RFC 9535 does not allow; such
// segments are rewritten to bracket notation before parsing.
type jpath struct {
	src      string
	p        *jsonpath.Path
	singular bool
}

func compilePath(src string) (*jpath, error) {
	if !strings.HasPrefix(src, "$") {
		return nil, fmt.Errorf("%q is not a JSONPath: paths start with $, as in $.detail.jobId", src)
	}
	p, err := jsonpath.Parse(bracketHyphens(src))
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "jsonpath: ")
		return nil, fmt.Errorf("%q is not a valid JSONPath: %s", src, msg)
	}
	return &jpath{src: src, p: p, singular: p.Query().Singular() != nil}, nil
}

// bracketHyphens rewrites dot-notation segments whose names hold characters RFC 9535's
// shorthand does not allow (such as '-') into bracket notation: $.detail-type becomes
// $['detail-type']. Text inside brackets and quotes is left alone.
func bracketHyphens(src string) string {
	if !strings.Contains(src, "-") {
		return src
	}
	var b strings.Builder
	depth := 0
	var quote byte
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(src) {
				i++
				b.WriteByte(src[i])
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '\'' || c == '"':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == '.' && depth == 0 && i+1 < len(src) && src[i+1] != '.' && src[i+1] != '[' && src[i+1] != '*':
			j := i + 1
			for j < len(src) && src[j] != '.' && src[j] != '[' {
				j++
			}
			name := src[i+1 : j]
			if strings.ContainsAny(name, "-") && !strings.ContainsAny(name, "'\\ ") {
				b.WriteString("['")
				b.WriteString(name)
				b.WriteString("']")
				i = j - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// eval returns the value the path selects in doc and whether it selects anything. A
// singular path yields its one node; other paths yield the array of the nodes selected.
func (p *jpath) eval(doc any) (any, bool) {
	nodes := p.p.Select(doc)
	if len(nodes) == 0 {
		return nil, false
	}
	if p.singular {
		return nodes[0], true
	}
	return []any(nodes), true
}

// decodeJSON decodes b keeping numbers as json.Number so that they keep their text.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

// jsonText encodes v as compact JSON without HTML escaping.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Values come from decoded JSON and always encode; keep the output valid anyway.
		return "null"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// stringContent returns s escaped for use between the quotes of a JSON string.
func stringContent(s string) string {
	q := jsonText(s)
	return q[1 : len(q)-1]
}

// textValue is the plain-text form of a value: a string as is, anything else as JSON.
func textValue(v any, ok bool) string {
	if !ok {
		return ""
	}
	if s, isString := v.(string); isString {
		return s
	}
	return jsonText(v)
}
