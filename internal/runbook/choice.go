package runbook

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// choiceRule is a compiled Choice rule: a Boolean combination (And, Or, Not) or one
// comparison of Variable against a literal or, for ...Path operators, another path.
type choiceRule struct {
	and, or     []*choiceRule
	not         *choiceRule
	variable    *pathExpr
	op          string // operator without the Path suffix
	operand     any
	operandPath *pathExpr
	next        string
	where       string
}

var comparisonOps = map[string]string{ // operator -> operand type
	"StringEquals": "string", "StringLessThan": "string", "StringGreaterThan": "string",
	"StringLessThanEquals": "string", "StringGreaterThanEquals": "string", "StringMatches": "string",
	"NumericEquals": "number", "NumericLessThan": "number", "NumericGreaterThan": "number",
	"NumericLessThanEquals": "number", "NumericGreaterThanEquals": "number",
	"BooleanEquals":   "boolean",
	"TimestampEquals": "timestamp", "TimestampLessThan": "timestamp", "TimestampGreaterThan": "timestamp",
	"TimestampLessThanEquals": "timestamp", "TimestampGreaterThanEquals": "timestamp",
	"IsNull": "boolean", "IsPresent": "boolean", "IsNumeric": "boolean", "IsString": "boolean",
	"IsBoolean": "boolean", "IsTimestamp": "boolean",
}

func isPathOp(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, "Path")
	if !ok || base == "StringMatches" || strings.HasPrefix(base, "Is") {
		return "", false
	}
	if _, known := comparisonOps[base]; !known {
		return "", false
	}
	return base, true
}

func compileRule(v any, where string, top bool, c *checker) *choiceRule {
	m, ok := v.(map[string]any)
	if !ok {
		c.addf(where, "a Choice rule must be an object, got %s", typeName(v))
		return nil
	}
	r := &choiceRule{where: where}
	if n, present := m["Next"]; present {
		s, ok := n.(string)
		switch {
		case !top:
			c.add(where+".Next", "nested rules inside And, Or or Not must not have Next")
		case !ok || s == "":
			c.add(where+".Next", "Next must be a state name")
		default:
			r.next = s
		}
	} else if top {
		c.add(where, "a top-level Choice rule needs Next")
	}
	var ops []string
	for k, val := range m {
		switch k {
		case "Next", "Comment":
			if k == "Comment" {
				if _, ok := val.(string); !ok {
					c.add(where+".Comment", "Comment must be a string")
				}
			}
		case "Variable":
			s, ok := val.(string)
			if !ok {
				c.add(where+".Variable", "Variable must be a path string")
				continue
			}
			pe, err := compilePath(s)
			if err != nil {
				c.add(where+".Variable", err.Error())
				continue
			}
			r.variable = pe
		case "And", "Or":
			ops = append(ops, k)
			arr, ok := val.([]any)
			if !ok || len(arr) == 0 {
				c.addf(where+"."+k, "%s must be a non-empty array of rules", k)
				continue
			}
			for i, e := range arr {
				sub := compileRule(e, fmt.Sprintf("%s.%s[%d]", where, k, i), false, c)
				if k == "And" {
					r.and = append(r.and, sub)
				} else {
					r.or = append(r.or, sub)
				}
			}
		case "Not":
			ops = append(ops, k)
			r.not = compileRule(val, where+".Not", false, c)
		default:
			if base, ok := isPathOp(k); ok {
				ops = append(ops, k)
				r.op = base
				s, isStr := val.(string)
				if !isStr {
					c.addf(where+"."+k, "%s must be a path string", k)
					continue
				}
				pe, err := compileRefPath(s)
				if err != nil {
					c.add(where+"."+k, err.Error())
					continue
				}
				r.operandPath = pe
				continue
			}
			typ, known := comparisonOps[k]
			if !known {
				c.addf(where+"."+k, "unknown field %q in a Choice rule", k)
				continue
			}
			ops = append(ops, k)
			r.op = k
			r.operand = val
			switch typ {
			case "string":
				if _, ok := val.(string); !ok {
					c.addf(where+"."+k, "%s needs a string, got %s", k, typeName(val))
				}
			case "number":
				if _, ok := asFloat(val); !ok {
					c.addf(where+"."+k, "%s needs a number, got %s", k, typeName(val))
				}
			case "boolean":
				if _, ok := val.(bool); !ok {
					c.addf(where+"."+k, "%s needs true or false, got %s", k, typeName(val))
				}
			case "timestamp":
				s, _ := val.(string)
				if _, ok := parseTimestamp(s); !ok {
					c.addf(where+"."+k, "%s needs an RFC 3339 timestamp like 2024-01-02T15:04:05Z, got %s", k, mustJSON(val))
				}
			}
		}
	}
	switch {
	case len(ops) == 0:
		c.add(where, "the rule has no operator (And, Or, Not, StringEquals, NumericLessThan, IsPresent, …)")
	case len(ops) > 1:
		c.addf(where, "the rule has several operators (%s): use one per rule and combine with And/Or", strings.Join(sortedCopy(ops), ", "))
	case ops[0] == "And" || ops[0] == "Or" || ops[0] == "Not":
		if r.variable != nil {
			c.addf(where+".Variable", "a %s rule must not have Variable", ops[0])
		}
	default:
		if r.variable == nil {
			if _, present := m["Variable"]; !present {
				c.addf(where, "%s needs Variable", ops[0])
			}
		}
	}
	return r
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// parseTimestamp parses an RFC 3339 timestamp with uppercase T and Z.
func parseTimestamp(s string) (time.Time, bool) {
	if strings.ContainsAny(s, "tz") {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// eval reports whether the rule matches input. A missing Variable is an error except for
// IsPresent.
func (r *choiceRule) eval(input, ctxObj any) (bool, error) {
	switch {
	case r.and != nil:
		for _, s := range r.and {
			ok, err := s.eval(input, ctxObj)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case r.or != nil:
		for _, s := range r.or {
			ok, err := s.eval(input, ctxObj)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case r.not != nil:
		ok, err := r.not.eval(input, ctxObj)
		return !ok && err == nil, err
	}
	val, present := r.variable.lookup(input, ctxObj)
	if r.op == "IsPresent" {
		return present == r.operand.(bool), nil
	}
	if !present {
		return false, fmt.Errorf("%s: Variable %s selects nothing from the input", r.where, r.variable.src)
	}
	operand := r.operand
	if r.operandPath != nil {
		v, ok := r.operandPath.lookup(input, ctxObj)
		if !ok {
			return false, fmt.Errorf("%s: %sPath %s selects nothing from the input", r.where, r.op, r.operandPath.src)
		}
		operand = v
	}
	switch r.op {
	case "IsNull":
		return (val == nil) == operand.(bool), nil
	case "IsNumeric":
		_, ok := asFloat(val)
		return ok == operand.(bool), nil
	case "IsString":
		_, ok := val.(string)
		return ok == operand.(bool), nil
	case "IsBoolean":
		_, ok := val.(bool)
		return ok == operand.(bool), nil
	case "IsTimestamp":
		s, ok := val.(string)
		if ok {
			_, ok = parseTimestamp(s)
		}
		return ok == operand.(bool), nil
	case "BooleanEquals":
		a, ok1 := val.(bool)
		b, ok2 := operand.(bool)
		return ok1 && ok2 && a == b, nil
	case "StringMatches":
		a, ok1 := val.(string)
		p, ok2 := operand.(string)
		return ok1 && ok2 && wildcardMatch(p, a), nil
	}
	var cmp int
	switch {
	case strings.HasPrefix(r.op, "String"):
		a, ok1 := val.(string)
		b, ok2 := operand.(string)
		if !ok1 || !ok2 {
			return false, nil
		}
		cmp = compareUTF16(a, b)
	case strings.HasPrefix(r.op, "Numeric"):
		a, ok1 := asFloat(val)
		b, ok2 := asFloat(operand)
		if !ok1 || !ok2 {
			return false, nil
		}
		cmp = compareFloat(a, b)
	case strings.HasPrefix(r.op, "Timestamp"):
		as, ok1 := val.(string)
		bs, ok2 := operand.(string)
		if !ok1 || !ok2 {
			return false, nil
		}
		a, ok1 := parseTimestamp(as)
		b, ok2 := parseTimestamp(bs)
		if !ok1 || !ok2 {
			return false, nil
		}
		cmp = a.Compare(b)
	}
	switch {
	case strings.HasSuffix(r.op, "LessThanEquals"):
		return cmp <= 0, nil
	case strings.HasSuffix(r.op, "GreaterThanEquals"):
		return cmp >= 0, nil
	case strings.HasSuffix(r.op, "LessThan"):
		return cmp < 0, nil
	case strings.HasSuffix(r.op, "GreaterThan"):
		return cmp > 0, nil
	}
	return cmp == 0, nil
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareUTF16 orders strings by UTF-16 code units, as Java's String.compareTo does.
func compareUTF16(a, b string) int {
	x, y := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] != y[i] {
			if x[i] < y[i] {
				return -1
			}
			return 1
		}
	}
	return compareFloat(float64(len(x)), float64(len(y)))
}

// wildcardMatch matches s against a pattern where * matches any run of characters and \*
// and \\ stand for a literal * and \.
func wildcardMatch(pattern, s string) bool {
	type tok struct {
		star bool
		r    rune
	}
	var toks []tok
	pr := []rune(pattern)
	for i := 0; i < len(pr); i++ {
		switch {
		case pr[i] == '\\' && i+1 < len(pr) && (pr[i+1] == '*' || pr[i+1] == '\\'):
			toks = append(toks, tok{r: pr[i+1]})
			i++
		case pr[i] == '*':
			toks = append(toks, tok{star: true})
		default:
			toks = append(toks, tok{r: pr[i]})
		}
	}
	sr := []rune(s)
	// Iterative matching with backtracking to the last star.
	ti, si, starT, starS := 0, 0, -1, 0
	for si < len(sr) {
		switch {
		case ti < len(toks) && !toks[ti].star && toks[ti].r == sr[si]:
			ti++
			si++
		case ti < len(toks) && toks[ti].star:
			starT, starS = ti, si
			ti++
		case starT >= 0:
			starS++
			ti, si = starT+1, starS
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].star {
		ti++
	}
	return ti == len(toks)
}
