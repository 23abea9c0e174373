package alarm

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Limits of a composite rule, as in CloudWatch.
const (
	MaxRuleLength = 10240 // characters
	MaxRuleAlarms = 100   // distinct alarms one rule references
)

// RuleError is a syntax error in a composite rule; ParseRule returns it inside an
// errs.Invalid error.
type RuleError struct {
	Column int // 1-based byte column of the offending token
	Msg    string
}

func (e *RuleError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Rule is a parsed composite rule. It is immutable and safe for concurrent use.
type Rule struct {
	src    string
	root   ruleNode
	alarms []string
}

// Alarms returns the distinct alarm names the rule references, sorted.
func (r *Rule) Alarms() []string { return append([]string(nil), r.alarms...) }

// String returns the rule's text.
func (r *Rule) String() string { return r.src }

// Eval evaluates the rule with the given alarm states.
func (r *Rule) Eval(state func(alarm string) State) bool { return r.root.eval(state) }

type ruleNode interface {
	eval(state func(string) State) bool
}

type (
	constNode bool
	notNode   struct{ x ruleNode }
	andNode   struct{ l, r ruleNode }
	orNode    struct{ l, r ruleNode }
	stateNode struct {
		state State
		alarm string
	}
	atLeastNode struct {
		n      int  // a count, or a percentage when pct
		pct    bool // n is a percentage
		negate bool // NOT STATE
		state  State
		alarms []string
	}
)

func (c constNode) eval(func(string) State) bool     { return bool(c) }
func (n notNode) eval(s func(string) State) bool     { return !n.x.eval(s) }
func (n andNode) eval(s func(string) State) bool     { return n.l.eval(s) && n.r.eval(s) }
func (n orNode) eval(s func(string) State) bool      { return n.l.eval(s) || n.r.eval(s) }
func (n stateNode) eval(s func(string) State) bool   { return s(n.alarm) == n.state }
func (n atLeastNode) eval(s func(string) State) bool { return n.count(s) >= n.need() }

func (n atLeastNode) count(s func(string) State) int {
	c := 0
	for _, a := range n.alarms {
		if (s(a) == n.state) != n.negate {
			c++
		}
	}
	return c
}

// need is the number of alarms that must match.
func (n atLeastNode) need() int {
	if !n.pct {
		return n.n
	}
	return int(math.Ceil(float64(n.n) * float64(len(n.alarms)) / 100))
}

// ParseRule parses a composite rule: ALARM(name), OK(name), INSUFFICIENT_DATA(name),
// TRUE, FALSE, AND, OR, NOT, parentheses and AT_LEAST(M, STATE, (a, b, …)) with M a count
// or a percentage and STATE one of ALARM, OK, INSUFFICIENT_DATA, optionally preceded by
// NOT. Names are bare (letters, digits, - _ . : /) or double-quoted. NOT binds tighter than
// AND, and AND tighter than OR. Errors are errs.Invalid wrapping a *RuleError.
func ParseRule(src string) (*Rule, error) {
	fail := func(col int, format string, args ...any) (*Rule, error) {
		return nil, errs.E("alarm.ParseRule", errs.Invalid, &RuleError{Column: col, Msg: fmt.Sprintf(format, args...)}).
			WithHint(`a rule reads like ALARM(shop-down) AND NOT ALARM(maintenance) or AT_LEAST(2, ALARM, (a, b, c))`)
	}
	if len(src) > MaxRuleLength {
		return fail(MaxRuleLength+1, "rule is %d characters long, the limit is %d", len(src), MaxRuleLength)
	}
	toks, err := lexRule(src)
	if err != nil {
		var re *RuleError
		errors.As(err, &re)
		return fail(re.Column, "%s", re.Msg)
	}
	p := &ruleParser{toks: toks, seen: map[string]bool{}}
	root, err := p.or()
	if err == nil && p.peek().kind != tokEOF {
		err = p.errorf(p.peek(), "unexpected %s after a complete rule (join rules with AND or OR)", p.peek())
	}
	if err != nil {
		var re *RuleError
		errors.As(err, &re)
		return fail(re.Column, "%s", re.Msg)
	}
	if len(p.names) > MaxRuleAlarms {
		return fail(1, "rule references %d alarms, the limit is %d", len(p.names), MaxRuleAlarms)
	}
	sort.Strings(p.names)
	return &Rule{src: src, root: root, alarms: p.names}, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokLParen
	tokRParen
	tokComma
	tokPercent
	tokWord   // a keyword, a bare name or a number
	tokString // a quoted name
)

type token struct {
	kind tokKind
	text string
	col  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of rule"
	case tokString:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == ':' || c == '/'
}

func lexRule(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", i + 1})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", i + 1})
			i++
		case c == ',':
			toks = append(toks, token{tokComma, ",", i + 1})
			i++
		case c == '%':
			toks = append(toks, token{tokPercent, "%", i + 1})
			i++
		case c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, &RuleError{Column: i + 1, Msg: "unterminated quoted name"}
			}
			if b.Len() == 0 {
				return nil, &RuleError{Column: i + 1, Msg: "empty alarm name"}
			}
			toks = append(toks, token{tokString, b.String(), i + 1})
			i = j + 1
		case isNameByte(c):
			j := i
			for j < len(src) && isNameByte(src[j]) {
				j++
			}
			toks = append(toks, token{tokWord, src[i:j], i + 1})
			i = j
		default:
			return nil, &RuleError{Column: i + 1, Msg: fmt.Sprintf("unexpected character %q", rune(c))}
		}
	}
	return append(toks, token{tokEOF, "", len(src) + 1}), nil
}

type ruleParser struct {
	toks  []token
	pos   int
	names []string
	seen  map[string]bool
}

func (p *ruleParser) peek() token { return p.toks[p.pos] }

func (p *ruleParser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *ruleParser) errorf(t token, format string, args ...any) error {
	return &RuleError{Column: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *ruleParser) isWord(text string) bool {
	t := p.peek()
	return t.kind == tokWord && t.text == text
}

func (p *ruleParser) expect(kind tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != kind {
		return t, p.errorf(t, "expected %s, found %s", what, t)
	}
	return t, nil
}

func (p *ruleParser) or() (ruleNode, error) {
	l, err := p.and()
	for err == nil && p.isWord("OR") {
		p.next()
		var r ruleNode
		if r, err = p.and(); err == nil {
			l = orNode{l, r}
		}
	}
	return l, err
}

func (p *ruleParser) and() (ruleNode, error) {
	l, err := p.unary()
	for err == nil && p.isWord("AND") {
		p.next()
		var r ruleNode
		if r, err = p.unary(); err == nil {
			l = andNode{l, r}
		}
	}
	return l, err
}

func (p *ruleParser) unary() (ruleNode, error) {
	if p.isWord("NOT") {
		p.next()
		x, err := p.unary()
		return notNode{x}, err
	}
	return p.primary()
}

// stateWord maps a state keyword to its State.
func stateWord(s string) (State, bool) {
	switch s {
	case "ALARM":
		return StateAlarm, true
	case "OK":
		return StateOK, true
	case "INSUFFICIENT_DATA":
		return StateInsufficient, true
	}
	return "", false
}

func (p *ruleParser) primary() (ruleNode, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "')' closing the '(' at column "+strconv.Itoa(t.col)); err != nil {
			return nil, err
		}
		return x, nil
	case tokWord:
	default:
		return nil, p.errorf(t, "expected ALARM(…), OK(…), INSUFFICIENT_DATA(…), AT_LEAST(…), TRUE, FALSE, NOT or '(', found %s", t)
	}
	switch t.text {
	case "TRUE":
		return constNode(true), nil
	case "FALSE":
		return constNode(false), nil
	case "AT_LEAST":
		return p.atLeast()
	}
	st, ok := stateWord(t.text)
	if !ok {
		if u := strings.ToUpper(t.text); u != t.text {
			if _, isState := stateWord(u); isState || u == "AND" || u == "OR" || u == "NOT" || u == "TRUE" || u == "FALSE" || u == "AT_LEAST" {
				return nil, p.errorf(t, "keywords are upper case: write %s, not %s", u, t.text)
			}
		}
		return nil, p.errorf(t, "expected ALARM(…), OK(…), INSUFFICIENT_DATA(…), AT_LEAST(…), TRUE, FALSE, NOT or '(', found %s", t)
	}
	if _, err := p.expect(tokLParen, "'(' after "+t.text); err != nil {
		return nil, err
	}
	name, err := p.name()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tokRParen, "')' after the alarm name"); err != nil {
		return nil, err
	}
	return stateNode{state: st, alarm: name}, nil
}

// name reads an alarm name and records it.
func (p *ruleParser) name() (string, error) {
	t := p.next()
	if t.kind != tokWord && t.kind != tokString {
		return "", p.errorf(t, "expected an alarm name, found %s", t)
	}
	if !p.seen[t.text] {
		p.seen[t.text] = true
		p.names = append(p.names, t.text)
	}
	return t.text, nil
}

// atLeast parses the arguments of AT_LEAST(M, STATE, (a, b, …)).
func (p *ruleParser) atLeast() (ruleNode, error) {
	if _, err := p.expect(tokLParen, "'(' after AT_LEAST"); err != nil {
		return nil, err
	}
	var n atLeastNode
	t := p.next()
	v, err := strconv.Atoi(t.text)
	if t.kind != tokWord || err != nil || v < 0 {
		return nil, p.errorf(t, "AT_LEAST needs a count or a percentage first (2 or 50%%), found %s", t)
	}
	n.n = v
	if p.peek().kind == tokPercent {
		p.next()
		n.pct = true
		if v > 100 {
			return nil, p.errorf(t, "AT_LEAST percentage %d%% is over 100%%", v)
		}
	}
	if _, err := p.expect(tokComma, "',' after the AT_LEAST count"); err != nil {
		return nil, err
	}
	if p.isWord("NOT") {
		p.next()
		n.negate = true
	}
	st := p.next()
	s, ok := stateWord(st.text)
	if st.kind != tokWord || !ok {
		return nil, p.errorf(st, "AT_LEAST needs a state (ALARM, OK, INSUFFICIENT_DATA, or NOT and one of them), found %s", st)
	}
	n.state = s
	if _, err := p.expect(tokComma, "',' after the AT_LEAST state"); err != nil {
		return nil, err
	}
	open, err := p.expect(tokLParen, "'(' opening the AT_LEAST list of alarms")
	if err != nil {
		return nil, err
	}
	for {
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		n.alarms = append(n.alarms, name)
		if p.peek().kind != tokComma {
			break
		}
		p.next()
	}
	if _, err := p.expect(tokRParen, "')' closing the list opened at column "+strconv.Itoa(open.col)); err != nil {
		return nil, err
	}
	if _, err := p.expect(tokRParen, "')' closing AT_LEAST"); err != nil {
		return nil, err
	}
	if !n.pct && n.n > len(n.alarms) {
		return nil, p.errorf(t, "AT_LEAST %d of %d alarms can never be true", n.n, len(n.alarms))
	}
	return n, nil
}
