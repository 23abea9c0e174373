package alarm

import (
	"fmt"
	"regexp"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Selector picks series from a Prometheus registry: a metric name and label matchers,
// name{label="v", other!="w", re=~"a.*", nre!~"b.*"}. It is immutable once parsed.
type Selector struct {
	Name     string
	Matchers []Matcher
}

// Matcher compares one label; a missing label has the value "".
type Matcher struct {
	Label string
	Op    string // "=", "!=", "=~", "!~"
	Value string
	re    *regexp.Regexp
}

func (m Matcher) matches(v string) bool {
	switch m.Op {
	case "=":
		return v == m.Value
	case "!=":
		return v != m.Value
	case "=~":
		return m.re.MatchString(v)
	}
	return !m.re.MatchString(v)
}

// String returns the selector in canonical form.
func (s Selector) String() string {
	if len(s.Matchers) == 0 {
		return s.Name
	}
	parts := make([]string, len(s.Matchers))
	for i, m := range s.Matchers {
		parts[i] = m.Label + m.Op + quoteValue(m.Value)
	}
	return s.Name + "{" + strings.Join(parts, ",") + "}"
}

// quoteValue double-quotes v with the escapes the parser reads.
func quoteValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(v) + `"`
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

func isNameChar(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

// ParseSelector parses a series selector. Errors are errs.Invalid and give the column.
func ParseSelector(src string) (Selector, error) {
	p := selParser{src: src}
	s, err := p.parse()
	if err != nil {
		return Selector{}, errs.Errorf("alarm.ParseSelector", errs.Invalid, "selector %q: %v", src, err).
			WithHint(`a selector reads like rewind_rpo_exposure_seconds{resource="orders-db"}`)
	}
	return s, nil
}

type selParser struct {
	src string
	i   int
}

func (p *selParser) errorf(format string, args ...any) error {
	return fmt.Errorf("column %d: %s", p.i+1, fmt.Sprintf(format, args...))
}

func (p *selParser) space() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
		p.i++
	}
}

func (p *selParser) ident(labels bool) string {
	start := p.i
	if p.i < len(p.src) && isNameStart(p.src[p.i]) && !(labels && p.src[p.i] == ':') {
		p.i++
		for p.i < len(p.src) && isNameChar(p.src[p.i]) && !(labels && p.src[p.i] == ':') {
			p.i++
		}
	}
	return p.src[start:p.i]
}

func (p *selParser) parse() (Selector, error) {
	var s Selector
	p.space()
	s.Name = p.ident(false)
	p.space()
	if p.i == len(p.src) {
		if s.Name == "" {
			return s, p.errorf("empty selector: name a metric")
		}
		return s, nil
	}
	if p.src[p.i] != '{' {
		return s, p.errorf("unexpected %q: expected '{' or the end", p.src[p.i])
	}
	p.i++
	for {
		p.space()
		if p.i < len(p.src) && p.src[p.i] == '}' {
			p.i++
			break
		}
		m, err := p.matcher()
		if err != nil {
			return s, err
		}
		s.Matchers = append(s.Matchers, m)
		p.space()
		if p.i < len(p.src) && p.src[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.src) && p.src[p.i] == '}' {
			p.i++
			break
		}
		if p.i == len(p.src) {
			return s, p.errorf("missing '}'")
		}
		return s, p.errorf("unexpected %q: expected ',' or '}'", p.src[p.i])
	}
	p.space()
	if p.i != len(p.src) {
		return s, p.errorf("unexpected %q after '}'", p.src[p.i])
	}
	if s.Name == "" {
		// {__name__="x", …}: the name is a matcher.
		for i, m := range s.Matchers {
			if m.Label == "__name__" && m.Op == "=" {
				s.Name = m.Value
				s.Matchers = append(s.Matchers[:i:i], s.Matchers[i+1:]...)
				break
			}
		}
		if s.Name == "" {
			return s, fmt.Errorf("no metric name: write name{…} or {__name__=\"name\", …}")
		}
	}
	return s, nil
}

func (p *selParser) matcher() (Matcher, error) {
	var m Matcher
	m.Label = p.ident(true)
	if m.Label == "" {
		if p.i == len(p.src) {
			return m, p.errorf("missing '}'")
		}
		return m, p.errorf("expected a label name, found %q", p.src[p.i])
	}
	p.space()
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if strings.HasPrefix(p.src[p.i:], op) {
			m.Op = op
			p.i += len(op)
			break
		}
	}
	if m.Op == "" {
		return m, p.errorf("expected =, !=, =~ or !~ after label %s", m.Label)
	}
	p.space()
	v, err := p.quoted()
	if err != nil {
		return m, err
	}
	m.Value = v
	if m.Op == "=~" || m.Op == "!~" {
		// Anchored, as in Prometheus.
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			return m, fmt.Errorf("label %s: bad regular expression %q: %v", m.Label, v, err)
		}
		m.re = re
	}
	return m, nil
}

func (p *selParser) quoted() (string, error) {
	if p.i == len(p.src) || (p.src[p.i] != '"' && p.src[p.i] != '\'') {
		return "", p.errorf("expected a quoted value")
	}
	q := p.src[p.i]
	start := p.i
	var b strings.Builder
	for p.i++; p.i < len(p.src); p.i++ {
		c := p.src[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\':
			p.i++
			if p.i == len(p.src) {
				break
			}
			switch e := p.src[p.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '"', '\'':
				b.WriteByte(e)
			default:
				return "", p.errorf("unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	p.i = start
	return "", p.errorf("unterminated quoted value")
}

// Eval sums the values of the series in fams that s selects and returns the sum and
// the number of series. Counters, gauges and untyped metrics contribute their value;
// histograms and summaries are selected as name_count and name_sum.
func (s Selector) Eval(fams []*dto.MetricFamily) (sum float64, n int) {
	for _, f := range fams {
		name := f.GetName()
		var value func(*dto.Metric) (float64, bool)
		switch {
		case name == s.Name:
			value = func(m *dto.Metric) (float64, bool) {
				switch {
				case m.Gauge != nil:
					return m.Gauge.GetValue(), true
				case m.Counter != nil:
					return m.Counter.GetValue(), true
				case m.Untyped != nil:
					return m.Untyped.GetValue(), true
				}
				return 0, false
			}
		case s.Name == name+"_count" || s.Name == name+"_sum":
			count := strings.HasSuffix(s.Name, "_count")
			value = func(m *dto.Metric) (float64, bool) {
				switch {
				case m.Histogram != nil && count:
					return float64(m.Histogram.GetSampleCount()), true
				case m.Histogram != nil:
					return m.Histogram.GetSampleSum(), true
				case m.Summary != nil && count:
					return float64(m.Summary.GetSampleCount()), true
				case m.Summary != nil:
					return m.Summary.GetSampleSum(), true
				}
				return 0, false
			}
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			if !s.matches(m) {
				continue
			}
			if v, ok := value(m); ok {
				sum += v
				n++
			}
		}
	}
	return sum, n
}

func (s Selector) matches(m *dto.Metric) bool {
	labels := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	for _, mt := range s.Matchers {
		if !mt.matches(labels[mt.Label]) {
			return false
		}
	}
	return true
}
