package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/events/intake"
	"github.com/rewind-dr/rewind/internal/events/rules"
	"github.com/rewind-dr/rewind/internal/monitor"
)

// DefaultArchive is how long the server keeps events for replay when events.archive is
// not set: 30 days.
const DefaultArchive = 30 * 24 * time.Hour

// Events holds the events block: how long events are archived, and the shared secret
// Alertmanager may send instead of an API token.
type Events struct {
	Archive time.Duration // 0 when the file sets none: the server then keeps DefaultArchive
	// AlertmanagerSecretFile is an absolute path (never read here); "" means only API
	// tokens are accepted on /v1/intake/alertmanager.
	AlertmanagerSecretFile string
}

// rawEvents mirrors the events block.
type rawEvents struct {
	At                     pos    `yaml:"-"`
	Archive                scalar `yaml:"archive"`
	AlertmanagerSecretFile scalar `yaml:"alertmanager_secret_file"`
}

// rawIntake mirrors one intake mapping.
type rawIntake struct {
	At         pos    `yaml:"-"`
	Source     scalar `yaml:"source" cfg:"required"`
	DetailType scalar `yaml:"detail_type" cfg:"required"`
	Detail     scalar `yaml:"detail"`
	Resources  scalar `yaml:"resources"`
	Time       scalar `yaml:"time"`
}

// spec holds the YAML of a block whose shape is a domain package's spec type T (a rule,
// a monitor, an alarm): the node is kept with its positions and decoded into T by the
// validator, which reports unknown fields and type errors at their line and column.
type spec[T any] struct {
	node *yaml.Node
	At   pos
}

func (s *spec[T]) decodeMap(d *decoder, n *yaml.Node, path string) {
	s.At = nodePos(n)
	if n.Kind != yaml.MappingNode {
		d.addf(nodePos(n), path, "expected a mapping of fields, got %s", describe(n))
		return
	}
	if countNodes(n) > maxNodes {
		d.tooBig = true
		d.addf(nodePos(n), path, "the block is too large")
		return
	}
	s.node = n
}

// specType is the Go type a spec[T] decodes into, for the schema test.
func (s spec[T]) specType() reflect.Type { return reflect.TypeFor[T]() }

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

// valueRE finds the offending value in a YAML type error ("cannot unmarshal !!str `soon`").
var valueRE = regexp.MustCompile("`([^`]*)`")

// findScalar finds, under n, the scalar on line whose value is value, and the field path
// leading to it (relative to n).
func findScalar(n *yaml.Node, line int, value, path string) (string, *yaml.Node) {
	if n == nil {
		return "", nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Line == line && n.Value == value {
			return path, n
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			if k, found := findScalar(n.Content[i+1], line, value, p); found != nil {
				return k, found
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if k, found := findScalar(c, line, value, fmt.Sprintf("%s[%d]", path, i)); found != nil {
				return k, found
			}
		}
	}
	return "", nil
}

// decodeSpec decodes s into out, checking every key against out's yaml tags first so that
// an unknown field is reported where it is. It returns false when a problem was recorded.
func decodeSpec[T any](v *validator, s spec[T], path string, out *T) bool {
	if s.node == nil {
		return false
	}
	before := len(v.problems)
	v.checkKeys(s.node, reflect.TypeFor[T](), path)
	if len(v.problems) > before {
		return false
	}
	if err := s.node.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				at, p := s.At, path
				if m := lineRE.FindStringSubmatch(msg); m != nil {
					at.Line, _ = strconv.Atoi(m[1])
					at.Column = 0
					msg = m[2]
					// Find the value on that line to name its field and column.
					if vm := valueRE.FindStringSubmatch(msg); vm != nil {
						if key, n := findScalar(s.node, at.Line, vm[1], ""); n != nil {
							at, p = nodePos(n), joinPath(path, key)
						}
					}
				}
				v.addf(at, p, "%s", friendlyYAML(msg))
			}
		} else {
			v.addf(s.At, path, "%s", friendlyYAML(err.Error()))
		}
		return false
	}
	return true
}

// friendlyYAML rewords the YAML library's type errors for people.
func friendlyYAML(msg string) string {
	msg = strings.ReplaceAll(msg, "cannot unmarshal !!str", "cannot use the text")
	msg = strings.ReplaceAll(msg, "cannot unmarshal !!map", "cannot use a mapping")
	msg = strings.ReplaceAll(msg, "cannot unmarshal !!seq", "cannot use a list")
	msg = strings.ReplaceAll(msg, "time.Duration", "a duration (such as 10s or 5m)")
	return strings.Replace(msg, " into ", " as ", 1)
}

// checkKeys reports every mapping key of n that the yaml tags of t do not name, and
// duplicate keys, recursing through structs, pointers, slices and maps. Free-form values
// (interfaces, such as an event pattern) are not checked.
func (v *validator) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type error
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		seen := map[string]pos{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if first, dup := seen[k.Value]; dup {
				v.addf(nodePos(k), path, "duplicate key %q (first at line %d, column %d)", k.Value, first.Line, first.Column)
				continue
			}
			seen[k.Value] = nodePos(k)
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", k.Value)
				if s := suggest(k.Value, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				} else {
					msg += "; known fields: " + strings.Join(names, ", ")
				}
				v.addf(nodePos(k), path, "%s", msg)
				continue
			}
			v.checkKeys(val, ft, joinPath(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				v.checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				v.checkKeys(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))
			}
		}
	}
}

// nodeAt finds the node a field path relative to n names ("targets[1].webhook.url"), or
// nil.
func nodeAt(n *yaml.Node, path string) *yaml.Node {
	for _, part := range strings.Split(path, ".") {
		name, idx, _ := strings.Cut(part, "[")
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				next = n.Content[i+1]
			}
		}
		n = next
		for idx != "" {
			num, rest, _ := strings.Cut(idx, "]")
			i, err := strconv.Atoi(num)
			if n == nil || n.Kind != yaml.SequenceNode || err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			idx = strings.TrimPrefix(rest, "[")
		}
	}
	return n
}

var fieldPathRE = regexp.MustCompile(`^([a-z_]+(?:\[\d+\])*(?:\.[a-z_]+(?:\[\d+\])*)*): (.*)$`)

// opPrefixRE matches the Go operation names errors carry ("monitor.Validate: "), which
// mean nothing to whoever edits the file.
var opPrefixRE = regexp.MustCompile(`\b[a-z]+\.[A-Z][A-Za-z]*: `)

// listRE matches the "N problems: a; b" form of a validation that lists several.
var listRE = regexp.MustCompile(`^\d+ problems: `)

// addSpecProblems adds the problems err reports about the spec at node (path in the file):
// each at the field it names, when the node has that field, else at the spec.
func (v *validator) addSpecProblems(err error, at pos, node *yaml.Node, path string) {
	msg := opPrefixRE.ReplaceAllString(cause(err), "")
	parts := []string{msg}
	if listRE.MatchString(msg) {
		parts = strings.Split(listRE.ReplaceAllString(msg, ""), "; ")
	}
	for _, part := range parts {
		a, p, m := at, path, part
		if sm := fieldPathRE.FindStringSubmatch(part); sm != nil {
			p, m = joinPath(path, sm[1]), sm[2]
			if n := nodeAt(node, sm[1]); n != nil {
				a = nodePos(n)
			}
		}
		v.addf(a, p, "%s", m)
	}
}

// events validates the events block and the rules, intake, monitors and alarms sections.
func (v *validator) events(raw *rawFile, cfg *Config) {
	if e := raw.Events; e != nil {
		if e.Archive.Set {
			if d := v.duration(e.Archive, "events.archive"); d > 0 {
				cfg.Events.Archive = d
			} else if d < 0 || e.Archive.Value == "0" {
				v.addf(e.Archive.At, "events.archive", "must be positive, such as 720h or 90d")
			}
		}
		cfg.Events.AlertmanagerSecretFile = v.secretFile(e.AlertmanagerSecretFile, "events.alertmanager_secret_file", "Alertmanager secret file")
	}
	cfg.Rules = nilIfEmpty(raw.Rules.Entries, map[string]rules.RuleSpec{})
	for _, e := range raw.Rules.Entries {
		path := "rules." + e.Key
		var rs rules.RuleSpec
		if !decodeSpec(v, e.Val, path, &rs) {
			continue
		}
		if _, err := rules.Compile(e.Key, rs); err != nil {
			msg := opPrefixRE.ReplaceAllString(cause(err), "")
			msg = strings.TrimPrefix(msg, strconv.Quote(e.Key)+": ")
			msg = strings.TrimPrefix(msg, "rule "+strconv.Quote(e.Key)+": ")
			at, p := e.Val.At, path
			if m := fieldPathRE.FindStringSubmatch(msg); m != nil {
				if n := nodeAt(e.Val.node, m[1]); n != nil {
					at, p, msg = nodePos(n), joinPath(path, m[1]), m[2]
				}
			}
			v.addf(at, p, "%s", msg)
			continue
		}
		cfg.Rules[e.Key] = rs
	}
	cfg.Intake = nilIfEmpty(raw.Intake.Entries, map[string]intake.Mapping{})
	for _, e := range raw.Intake.Entries {
		path := "intake." + e.Key
		v.name(e.KeyAt, "intake", "intake", e.Key)
		if e.Key == "alertmanager" {
			v.addf(e.KeyAt, "intake", "intake name %q is taken by the built-in Alertmanager receiver; choose another", e.Key)
		}
		m := intake.Mapping{Source: e.Val.Source.Value, DetailType: e.Val.DetailType.Value, Detail: e.Val.Detail.Value,
			Resources: e.Val.Resources.Value, Time: e.Val.Time.Value}
		if err := m.Validate(); err != nil && e.Val.Source.Set && e.Val.DetailType.Set {
			v.addf(e.Val.At, path, "%s", cause(err))
			continue
		}
		cfg.Intake[e.Key] = m
	}
	cfg.Monitors = nilIfEmpty(raw.Monitors.Entries, map[string]monitor.Spec{})
	every := map[string]time.Duration{}
	for _, e := range raw.Monitors.Entries {
		path := "monitors." + e.Key
		v.name(e.KeyAt, "monitors", "monitor", e.Key)
		var ms monitor.Spec
		if !decodeSpec(v, e.Val, path, &ms) {
			continue
		}
		m, err := monitor.New(e.Key, ms)
		if err != nil {
			v.addSpecProblems(err, e.Val.At, e.Val.node, path)
			continue
		}
		cfg.Monitors[e.Key] = ms
		every[e.Key] = m.Spec().Every
	}
	cfg.Alarms = nilIfEmpty(raw.Alarms.Entries, map[string]alarm.Spec{})
	for _, e := range raw.Alarms.Entries {
		path := "alarms." + e.Key
		v.name(e.KeyAt, "alarms", "alarm", e.Key)
		var as alarm.Spec
		if !decodeSpec(v, e.Val, path, &as) {
			continue
		}
		if err := as.Validate(); err != nil {
			v.addSpecProblems(err, e.Val.At, e.Val.node, path)
			continue
		}
		cfg.Alarms[e.Key] = as
	}
	if len(cfg.Alarms) > 0 && len(cfg.Alarms) == len(raw.Alarms.Entries) && len(cfg.Monitors) == len(raw.Monitors.Entries) {
		// References between alarms and to monitors, and cycles among composites.
		if _, err := alarm.NewEvaluator(cfg.Alarms, nil, alarm.WithMonitors(every)); err != nil {
			v.addSpecProblems(err, raw.Alarms.At, nil, "alarms")
		}
	}
}

// RuleNames returns the names of the configured rules, sorted.
func (c *Config) RuleNames() []string {
	out := make([]string, 0, len(c.Rules))
	for n := range c.Rules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// nilIfEmpty returns m when the section has entries, nil otherwise: a Config without the
// section compares equal to one built by hand.
func nilIfEmpty[E any, M ~map[string]V, V any](entries []E, m M) M {
	if len(entries) == 0 {
		return nil
	}
	return m
}
