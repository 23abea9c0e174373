package rules

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MaxPaths is EventBridge's limit on the variables of one input transformer.
const MaxPaths = 100

// Predefined template variables, with EventBridge's names and Rewind's aliases. The rule
// ARN is the rule name: Rewind rules have no ARN.
const (
	VarEvent         = "aws.events.event"                // the event without its detail, as JSON
	VarEventJSON     = "aws.events.event.json"           // the whole event, as JSON
	VarRuleName      = "aws.events.rule-name"            // the rule's name
	VarRuleARN       = "aws.events.rule-arn"             // the rule's name (Rewind has no ARNs)
	VarIngestionTime = "aws.events.event.ingestion-time" // when the event was matched, RFC 3339
)

var predefined = map[string]string{
	VarEvent:                      VarEvent,
	VarEventJSON:                  VarEventJSON,
	VarRuleName:                   VarRuleName,
	VarRuleARN:                    VarRuleName,
	VarIngestionTime:              VarIngestionTime,
	"rewind.event":                VarEvent,
	"rewind.event.json":           VarEventJSON,
	"rewind.rule-name":            VarRuleName,
	"rewind.event.ingestion-time": VarIngestionTime,
}

// titleBuiltins are the extra variables an incident title may use.
var titleBuiltins = []string{"source", "detail-type", "id", "time", "site", "resource", "resources"}

// segment is a literal run of a template or, when name is set, a placeholder.
type segment struct {
	lit    string
	name   string
	quoted bool // inside a JSON string
}

// template is a parsed InputTemplate. When json is set the template is JSON once its
// placeholders are filled, and placeholders render as JSON values or string content;
// otherwise it is plain text.
type template struct {
	segs []segment
	json bool
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// parseTemplate splits src into literals and <name> placeholders, refusing names that
// known does not accept, and decides whether it is a JSON template.
func parseTemplate(src string, known func(string) bool) (*template, error) {
	t := &template{}
	var lit strings.Builder
	inString, escaped := false, false
	var unknown []string
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '<' {
			j := i + 1
			for j < len(src) && isNameByte(src[j]) {
				j++
			}
			if j > i+1 && j < len(src) && src[j] == '>' {
				name := src[i+1 : j]
				if !known(name) && !slices.Contains(unknown, name) {
					unknown = append(unknown, name)
				}
				if lit.Len() > 0 {
					t.segs = append(t.segs, segment{lit: lit.String()})
					lit.Reset()
				}
				t.segs = append(t.segs, segment{name: name, quoted: inString})
				i = j
				escaped = false
				continue
			}
		}
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
		lit.WriteByte(c)
	}
	if lit.Len() > 0 {
		t.segs = append(t.segs, segment{lit: lit.String()})
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("placeholder <%s> is not defined", strings.Join(unknown, ">, <"))
	}
	var probe strings.Builder
	for _, s := range t.segs {
		switch {
		case s.name == "":
			probe.WriteString(s.lit)
		case !s.quoted:
			probe.WriteString("null")
		}
	}
	t.json = json.Valid([]byte(probe.String()))
	return t, nil
}

// render fills the template. In a JSON template a placeholder inside a string becomes
// escaped string content (empty when the variable is missing) and one outside strings a
// JSON value (null when missing); in a text template a string value is inserted as is,
// any other value as JSON, and a missing one as nothing.
func (t *template) render(lookup func(string) (any, bool)) []byte {
	var b strings.Builder
	for _, s := range t.segs {
		if s.name == "" {
			b.WriteString(s.lit)
			continue
		}
		v, ok := lookup(s.name)
		switch {
		case !t.json:
			b.WriteString(textValue(v, ok))
		case s.quoted:
			if ok {
				b.WriteString(stringContent(textValue(v, ok)))
			}
		case !ok:
			b.WriteString("null")
		default:
			b.WriteString(jsonText(v))
		}
	}
	return []byte(b.String())
}

// transformer is a compiled input transformer.
type transformer struct {
	paths map[string]*jpath
	tmpl  *template
}

// compileTransformer validates spec. Errors name the field relative to the transformer.
func compileTransformer(spec *TransformerSpec) (*transformer, error) {
	if len(spec.Paths) > MaxPaths {
		return nil, fieldErr("paths", fmt.Errorf("%d variables, at most %d are allowed", len(spec.Paths), MaxPaths))
	}
	tr := &transformer{paths: make(map[string]*jpath, len(spec.Paths))}
	for _, name := range slices.Sorted(maps.Keys(spec.Paths)) {
		if err := checkVarName(name); err != nil {
			return nil, fieldErr("paths."+name, err)
		}
		p, err := compilePath(spec.Paths[name])
		if err != nil {
			return nil, fieldErr("paths."+name, err)
		}
		tr.paths[name] = p
	}
	if strings.TrimSpace(spec.Template) == "" {
		return nil, fieldErr("template", fmt.Errorf("is empty; an input transformer needs a template such as '{\"job\": <job>}'"))
	}
	tmpl, err := parseTemplate(spec.Template, func(n string) bool {
		_, ok := tr.paths[n]
		return ok || predefined[n] != ""
	})
	if err != nil {
		return nil, fieldErr("template", fmt.Errorf("%w (defined: %s)", err, tr.knownNames(nil)))
	}
	tr.tmpl = tmpl
	return tr, nil
}

func checkVarName(name string) error {
	if name == "" {
		return fmt.Errorf("a variable needs a name")
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("variable name %q may hold only letters, digits, '_', '-' and '.'", name)
		}
	}
	if strings.HasPrefix(name, "aws.") || strings.HasPrefix(name, "rewind.") {
		return fmt.Errorf("variable name %q is reserved: names starting with aws. or rewind. are predefined", name)
	}
	return nil
}

// knownNames lists the names a template may use, for error messages.
func (tr *transformer) knownNames(extra []string) string {
	var names []string
	if tr != nil {
		names = slices.Sorted(maps.Keys(tr.paths))
	}
	names = append(names, extra...)
	names = append(names, VarEvent, VarEventJSON, VarRuleName, VarRuleARN, VarIngestionTime)
	return "<" + strings.Join(names, ">, <") + ">"
}

// scope is what placeholders are resolved against while matching one event.
type scope struct {
	doc       map[string]any // the decoded event
	rule      string
	ingestion time.Time
	noDetail  map[string]any // the event without detail, built on first use
}

func (s *scope) predefinedValue(name string) (any, bool) {
	switch predefined[name] {
	case VarEvent:
		if s.noDetail == nil {
			s.noDetail = make(map[string]any, len(s.doc))
			for k, v := range s.doc {
				if k != "detail" {
					s.noDetail[k] = v
				}
			}
		}
		return s.noDetail, true
	case VarEventJSON:
		return s.doc, true
	case VarRuleName:
		return s.rule, true
	case VarIngestionTime:
		return s.ingestion.UTC().Format(time.RFC3339Nano), true
	}
	return nil, false
}

// lookup resolves a template variable: the transformer's paths first, then the
// predefined variables.
func (s *scope) lookup(tr *transformer, name string) (any, bool) {
	if tr != nil {
		if p, ok := tr.paths[name]; ok {
			return p.eval(s.doc)
		}
	}
	return s.predefinedValue(name)
}

// titleValue resolves an incident title variable: the transformer's and predefined
// variables, then the title built-ins.
func (s *scope) titleValue(tr *transformer, name string) (any, bool) {
	if v, ok := s.lookup(tr, name); ok || (tr != nil && tr.paths[name] != nil) || predefined[name] != "" {
		return v, ok
	}
	switch name {
	case "resource", "resources":
		arr, _ := s.doc["resources"].([]any)
		if len(arr) == 0 {
			return nil, false
		}
		if name == "resource" {
			return arr[0], true
		}
		parts := make([]string, len(arr))
		for i, r := range arr {
			parts[i] = textValue(r, true)
		}
		return strings.Join(parts, ", "), true
	default:
		v, ok := s.doc[name]
		return v, ok
	}
}

// apply renders the transformer's template for the event in scope.
func (tr *transformer) apply(s *scope) []byte {
	return tr.tmpl.render(func(name string) (any, bool) { return s.lookup(tr, name) })
}
