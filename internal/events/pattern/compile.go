package pattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
)

const opCompile = "pattern.Compile"

// Limits of the pattern language, as EventBridge documents them.
const (
	// MaxNumeric is the largest magnitude a number in a numeric operator or a numeric
	// anything-but may have. Event numbers outside ±MaxNumeric never satisfy a numeric
	// comparison; they can still equal an exact number pattern written the same way.
	MaxNumeric = 5.0e9
	// NumericDecimals is the number of digits after the decimal point that numeric
	// comparisons honour; values are rounded to this precision before comparing.
	NumericDecimals = 6
	// MaxCombinations is the largest number of alternatives a pattern may expand to
	// through $or (the product of the $or arities, nested ones included).
	MaxCombinations = 1000
)

// operators is the list of match operators, for error messages.
const operators = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, cidr, exists"

// reservedInOr are names that cannot be field names inside a $or member, where they would
// be ambiguous with operators: the operators, the numeric comparisons, and the names
// EventBridge's engine reserves for future operators.
var reservedInOr = map[string]bool{
	"prefix": true, "suffix": true, "equals-ignore-case": true, "wildcard": true,
	"anything-but": true, "numeric": true, "cidr": true, "exists": true, "exactly": true,
	"=": true, "<": true, "<=": true, ">": true, ">=": true,
	"regex": true, "not-wildcard": true, "not-equals-ignore-case": true,
	"date-after": true, "date-on-or-after": true, "date-before": true, "date-on-or-before": true,
	"in-date-range": true, "ip-address-in-range": true, "ip-address-not-in-range": true,
}

// Pattern is a compiled event pattern. It is immutable and safe for concurrent use.
type Pattern struct {
	root *node
}

// node is one object level of a pattern: every field must match, and for every $or
// group at least one alternative must match.
type node struct {
	fields []field
	ors    [][]*node
}

// field is one named member of a pattern object: either a leaf (a list of match values)
// or a nested object.
type field struct {
	name string
	leaf *leaf
	sub  *node
}

// Compile validates an event pattern and precompiles it for matching. A pattern that
// EventBridge would reject is rejected here with an errs.Invalid error that names the
// JSON path of the offending part (for example $.detail.state[0].numeric) and says why.
// Compile is safe for concurrent use.
func Compile(pattern []byte) (*Pattern, error) {
	dec := json.NewDecoder(bytes.NewReader(pattern))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errs.Errorf(opCompile, errs.Invalid, "event pattern is not valid JSON: %v", err).
			WithHint(`an event pattern is a JSON object such as {"source": ["rewind.backup"]}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errs.Errorf(opCompile, errs.Invalid, "event pattern has data after the JSON object").
			WithHint("a pattern is exactly one JSON object; remove what follows it")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errs.Errorf(opCompile, errs.Invalid, "$: event pattern must be a JSON object, got %s", typeName(v)).
			WithHint(`an event pattern is a JSON object such as {"source": ["rewind.backup"]}`)
	}
	root, err := compileObject(obj, "$", false)
	if err != nil {
		return nil, err
	}
	if n := root.combinations(); n > MaxCombinations {
		return nil, errs.Errorf(opCompile, errs.Invalid,
			"$: the $or operators expand to more than %d combinations", MaxCombinations).
			WithHint("split the rule into several rules or reduce the number of $or alternatives")
	}
	return &Pattern{root: root}, nil
}

// invalid builds the error for a bad part of a pattern at path.
func invalid(path, format string, args ...any) *errs.Error {
	return errs.Errorf(opCompile, errs.Invalid, "%s: %s", path, fmt.Sprintf(format, args...))
}

// combinations returns how many $or-free rules n expands to, capped just above
// MaxCombinations so that the product cannot overflow.
func (n *node) combinations() int {
	total := 1
	for _, f := range n.fields {
		if f.sub != nil {
			total = capMul(total, f.sub.combinations())
		}
	}
	for _, group := range n.ors {
		sum := 0
		for _, alt := range group {
			sum += alt.combinations()
			if sum > MaxCombinations {
				sum = MaxCombinations + 1
			}
		}
		total = capMul(total, sum)
	}
	return total
}

func capMul(a, b int) int {
	if a > MaxCombinations || b > MaxCombinations || a*b > MaxCombinations {
		return MaxCombinations + 1
	}
	return a * b
}

func compileObject(obj map[string]any, path string, inOr bool) (*node, error) {
	if len(obj) == 0 {
		return nil, invalid(path, "empty object is not allowed").
			WithHint("give the object at least one field, or remove it")
	}
	n := &node{}
	for _, name := range sortedKeys(obj) {
		v := obj[name]
		if name == "$or" {
			group, err := compileOr(v, path+".$or", inOr)
			if err != nil {
				return nil, err
			}
			n.ors = append(n.ors, group)
			continue
		}
		fpath := childPath(path, name)
		if inOr && reservedInOr[name] {
			return nil, invalid(fpath, "%q is an operator name and cannot be a field name inside $or", name)
		}
		switch v := v.(type) {
		case map[string]any:
			sub, err := compileObject(v, fpath, inOr)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, field{name: name, sub: sub})
		case []any:
			l, err := compileLeaf(v, fpath)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, field{name: name, leaf: l})
		default:
			return nil, invalid(fpath, "must be an array of match values or an object of fields, got %s", typeName(v)).
				WithHint(fmt.Sprintf(`wrap the value in an array: %q: [%s]`, name, compactJSON(v)))
		}
	}
	// Evaluate leaves before nested objects: they are cheaper and, for envelope fields
	// such as source and detail-type, the most selective.
	sort.SliceStable(n.fields, func(i, j int) bool { return n.fields[i].leaf != nil && n.fields[j].leaf == nil })
	return n, nil
}

func compileOr(v any, path string, inOr bool) ([]*node, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, invalid(path, "must be an array of at least two objects, got %s", typeName(v))
	}
	if len(arr) < 2 {
		return nil, invalid(path, "must have at least two objects, has %d", len(arr)).
			WithHint("with a single alternative, put its fields directly in the enclosing object")
	}
	group := make([]*node, 0, len(arr))
	for i, e := range arr {
		obj, ok := e.(map[string]any)
		epath := fmt.Sprintf("%s[%d]", path, i)
		if !ok {
			return nil, invalid(epath, "each $or member must be an object, got %s", typeName(e))
		}
		alt, err := compileObject(obj, epath, true)
		if err != nil {
			return nil, err
		}
		group = append(group, alt)
	}
	return group, nil
}

func compileLeaf(arr []any, path string) (*leaf, error) {
	if len(arr) == 0 {
		return nil, invalid(path, "empty array is not allowed").
			WithHint("list at least one value to match, or remove the field")
	}
	l := &leaf{}
	for i, e := range arr {
		epath := fmt.Sprintf("%s[%d]", path, i)
		switch e := e.(type) {
		case string:
			l.addString(e)
		case json.Number:
			l.nums = append(l.nums, newNumber(string(e)))
		case bool:
			if e {
				l.trueOK = true
			} else {
				l.falseOK = true
			}
		case nil:
			l.nullOK = true
		case map[string]any:
			if err := compileOperator(l, e, epath); err != nil {
				return nil, err
			}
		default:
			return nil, invalid(epath, "match values must be strings, numbers, true, false, null or an operator object, got %s", typeName(e))
		}
	}
	return l, nil
}

// compileOperator adds the operator object obj (such as {"prefix": "x"}) to l.
func compileOperator(l *leaf, obj map[string]any, path string) error {
	if len(obj) != 1 {
		if len(obj) == 0 {
			return invalid(path, "empty operator object; use one of %s", operators)
		}
		return invalid(path, "an operator object has exactly one key, found %d (%s)", len(obj), strings.Join(sortedKeys(obj), ", "))
	}
	var name string
	var v any
	for name, v = range obj {
	}
	opath := childPath(path, name)
	switch name {
	case "prefix", "suffix":
		s, fold, err := stringOrIgnoreCase(v, opath)
		if err != nil {
			return err
		}
		if name == "prefix" {
			l.ops = append(l.ops, prefixMatcher{s: s, fold: fold})
		} else {
			l.ops = append(l.ops, suffixMatcher{s: s, fold: fold})
		}
	case "equals-ignore-case":
		s, ok := v.(string)
		if !ok {
			return invalid(opath, "must be a string, got %s", typeName(v))
		}
		l.ops = append(l.ops, foldMatcher{s: s})
	case "wildcard":
		s, ok := v.(string)
		if !ok {
			return invalid(opath, "must be a string, got %s", typeName(v))
		}
		w, err := compileWildcard(s, opath)
		if err != nil {
			return err
		}
		l.ops = append(l.ops, w)
	case "anything-but":
		m, err := compileAnythingBut(v, opath)
		if err != nil {
			return err
		}
		l.ops = append(l.ops, m)
	case "numeric":
		m, err := compileNumeric(v, opath)
		if err != nil {
			return err
		}
		l.ops = append(l.ops, m)
	case "cidr":
		s, ok := v.(string)
		if !ok {
			return invalid(opath, "must be a string such as \"10.0.0.0/24\", got %s", typeName(v))
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return invalid(opath, "%q is not a valid CIDR block", s).
				WithHint(`write an address and a prefix length, such as "10.0.0.0/24" or "2001:db8::/32"`)
		}
		l.ops = append(l.ops, cidrMatcher{p: p.Masked()})
	case "exists":
		b, ok := v.(bool)
		if !ok {
			return invalid(opath, "must be true or false, got %s", typeName(v))
		}
		if b {
			l.anyValue = true
		} else {
			l.absentOK = true
		}
	default:
		return invalid(path, "unknown operator %q; valid operators are %s", name, operators)
	}
	return nil
}

// stringOrIgnoreCase reads the value of prefix or suffix: a string, or
// {"equals-ignore-case": string}.
func stringOrIgnoreCase(v any, path string) (string, bool, error) {
	switch v := v.(type) {
	case string:
		return v, false, nil
	case map[string]any:
		s, ok := v["equals-ignore-case"].(string)
		if len(v) != 1 || !ok {
			return "", false, invalid(path, `must be a string or {"equals-ignore-case": string}`)
		}
		return s, true, nil
	}
	return "", false, invalid(path, `must be a string or {"equals-ignore-case": string}, got %s`, typeName(v))
}

func compileAnythingBut(v any, path string) (matcher, error) {
	switch v := v.(type) {
	case string:
		return butStrings{set: map[string]struct{}{v: {}}}, nil
	case json.Number:
		q, err := numericValue(v, path)
		if err != nil {
			return nil, err
		}
		return butNumbers{set: map[int64]struct{}{q: {}}}, nil
	case []any:
		return compileAnythingButList(v, path)
	case map[string]any:
		return compileAnythingButObject(v, path)
	}
	return nil, invalid(path, "must be a string, a number, a list of strings or of numbers, or an object with prefix, suffix, equals-ignore-case or wildcard; got %s", typeName(v))
}

func compileAnythingButList(arr []any, path string) (matcher, error) {
	if len(arr) == 0 {
		return nil, invalid(path, "empty list is not allowed")
	}
	strs := map[string]struct{}{}
	nums := map[int64]struct{}{}
	for i, e := range arr {
		epath := fmt.Sprintf("%s[%d]", path, i)
		switch e := e.(type) {
		case string:
			strs[e] = struct{}{}
		case json.Number:
			q, err := numericValue(e, epath)
			if err != nil {
				return nil, err
			}
			nums[q] = struct{}{}
		default:
			return nil, invalid(epath, "anything-but list values must be strings or numbers, got %s", typeName(e))
		}
	}
	if len(strs) > 0 && len(nums) > 0 {
		return nil, invalid(path, "anything-but list mixes strings and numbers; all values must be of one type").
			WithHint("use separate anything-but lists in separate rules, or quote the numbers if the event holds strings")
	}
	if len(nums) > 0 {
		return butNumbers{set: nums}, nil
	}
	return butStrings{set: strs}, nil
}

func compileAnythingButObject(obj map[string]any, path string) (matcher, error) {
	if len(obj) != 1 {
		return nil, invalid(path, "must have exactly one of prefix, suffix, equals-ignore-case or wildcard, found %d keys", len(obj))
	}
	var name string
	var v any
	for name, v = range obj {
	}
	opath := childPath(path, name)
	switch name {
	case "prefix", "suffix", "equals-ignore-case", "wildcard":
	default:
		return nil, invalid(path, "unsupported anything-but operator %q; use prefix, suffix, equals-ignore-case or wildcard", name)
	}
	var list []string
	switch v := v.(type) {
	case string:
		list = []string{v}
	case []any:
		if len(v) == 0 {
			return nil, invalid(opath, "empty list is not allowed")
		}
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, invalid(fmt.Sprintf("%s[%d]", opath, i), "must be a string, got %s", typeName(e))
			}
			list = append(list, s)
		}
	default:
		return nil, invalid(opath, "must be a string or a list of strings, got %s", typeName(v))
	}
	switch name {
	case "prefix", "suffix":
		for _, s := range list {
			if s == "" {
				return nil, invalid(opath, "an empty %s is not allowed in anything-but", name)
			}
		}
		if name == "prefix" {
			return butPrefix{list: list}, nil
		}
		return butSuffix{list: list}, nil
	case "equals-ignore-case":
		set := make(map[string]struct{}, len(list))
		for _, s := range list {
			set[foldKey(s)] = struct{}{}
		}
		return butFold{set: set}, nil
	default: // wildcard
		ws := make([]*wildcard, 0, len(list))
		for _, s := range list {
			w, err := compileWildcard(s, opath)
			if err != nil {
				return nil, err
			}
			ws = append(ws, w)
		}
		return butWildcard{list: ws}, nil
	}
}

// compileNumeric reads ["=", n], ["<", n], ["<=", n], [">", n], [">=", n] or a range
// [">" or ">=", low, "<" or "<=", high].
func compileNumeric(v any, path string) (matcher, error) {
	const want = `write ["=", 5], ["<", 5], [">=", 0] or a range such as [">", 0, "<=", 5]`
	arr, ok := v.([]any)
	if !ok {
		return nil, invalid(path, "must be an array, got %s", typeName(v)).WithHint(want)
	}
	if len(arr) != 2 && len(arr) != 4 {
		return nil, invalid(path, "must have 2 or 4 elements, has %d", len(arr)).WithHint(want)
	}
	op, err := numericOperator(arr[0], fmt.Sprintf("%s[0]", path))
	if err != nil {
		return nil, err
	}
	val, err := numericValueAny(arr[1], fmt.Sprintf("%s[1]", path))
	if err != nil {
		return nil, err
	}
	m := numericMatcher{}
	switch op {
	case "=":
		m.lo, m.hi, m.hasLo, m.hasHi = val, val, true, true
	case "<", "<=":
		m.hi, m.hasHi, m.hiOpen = val, true, op == "<"
	case ">", ">=":
		m.lo, m.hasLo, m.loOpen = val, true, op == ">"
	}
	if len(arr) == 2 {
		return m, nil
	}
	if op != ">" && op != ">=" {
		return nil, invalid(path, "a range starts with a lower bound (> or >=), not %q", op).WithHint(want)
	}
	op2, err := numericOperator(arr[2], fmt.Sprintf("%s[2]", path))
	if err != nil {
		return nil, err
	}
	if op2 != "<" && op2 != "<=" {
		return nil, invalid(fmt.Sprintf("%s[2]", path), "the second bound of a range must be < or <=, not %q", op2).WithHint(want)
	}
	hi, err := numericValueAny(arr[3], fmt.Sprintf("%s[3]", path))
	if err != nil {
		return nil, err
	}
	if hi <= m.lo {
		return nil, invalid(path, "the lower bound must be less than the upper bound")
	}
	m.hi, m.hasHi, m.hiOpen = hi, true, op2 == "<"
	return m, nil
}

func numericOperator(v any, path string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", invalid(path, "expected a comparison operator (=, <, <=, >, >=), got %s", typeName(v))
	}
	switch s {
	case "=", "<", "<=", ">", ">=":
		return s, nil
	}
	return "", invalid(path, "unknown numeric operator %q; use =, <, <=, > or >=", s)
}

func numericValueAny(v any, path string) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, invalid(path, "expected a number, got %s", typeName(v))
	}
	return numericValue(n, path)
}

// numericValue parses a pattern number for numeric comparison and checks it against
// EventBridge's bounds.
func numericValue(n json.Number, path string) (int64, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.Abs(f) > MaxNumeric {
		return 0, invalid(path, "number %s is outside the range numeric matching supports (-5.0e9 to 5.0e9)", n)
	}
	return quantize(f), nil
}

// quantize rounds f to NumericDecimals decimals and scales it to an integer. Inputs are
// within ±MaxNumeric, so the result is below 2^53 and exact.
func quantize(f float64) int64 { return int64(math.Round(f * 1e6)) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// childPath appends a field name to a JSON path, quoting names that are not plain.
func childPath(path, name string) string {
	plain := name != ""
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '$' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number (" + string(v) + ")"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "..."
	}
	return string(b)
}
