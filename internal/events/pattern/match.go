package pattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/netip"
	"strconv"

	"github.com/rewind-dr/rewind/internal/errs"
)

const opMatch = "pattern.Match"

// Match reports whether the JSON event matches p. The event is decoded with
// json.Decoder.UseNumber, so numbers keep their text. An event that is valid JSON but not
// an object matches nothing. The error is non-nil (errs.Invalid) only when the event is
// not valid JSON. Match is safe for concurrent use.
func (p *Pattern) Match(event []byte) (bool, error) {
	v, err := decodeEvent(event, opMatch)
	if err != nil {
		return false, err
	}
	return p.MatchValue(v), nil
}

// MatchValue reports whether an already decoded event matches p. v is what encoding/json
// produces when decoding into an any: map[string]any, []any, string, bool, nil, and
// numbers as json.Number (Decoder.UseNumber, preferred) or float64. Numbers compare as
// EventBridge compares them: an exact number pattern matches an event number with the
// same text or, when both lie within ±MaxNumeric, the same value rounded to
// NumericDecimals decimals (3 matches 3.0 and 3e0); numeric operators use that rounded
// value. With float64 input the text is unknown, so numbers beyond ±MaxNumeric compare
// by float64 equality instead. Values of other Go types count as present for exists
// and anything-but but match no other operator. An event that is not an object matches
// nothing. MatchValue is safe for concurrent use.
func (p *Pattern) MatchValue(v any) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	return p.root.match(obj)
}

func decodeEvent(event []byte, op string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "event is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errs.Errorf(op, errs.Invalid, "event has data after the JSON value")
	}
	return v, nil
}

// match reports whether the object obj (nil for a missing or non-object value) matches n.
func (n *node) match(obj map[string]any) bool {
	for i := range n.fields {
		f := &n.fields[i]
		v, present := obj[f.name]
		if f.leaf != nil {
			if !f.leaf.match(v, present) {
				return false
			}
		} else if !f.sub.matchValue(v) {
			return false
		}
	}
	for _, group := range n.ors {
		ok := false
		for _, alt := range group {
			if alt.match(obj) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchValue matches a nested pattern object against an event value: an object directly,
// an array when any element matches, and anything else as an object with no fields (so
// that only exists:false conditions can hold).
func (n *node) matchValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		return n.match(v)
	case []any:
		if len(v) == 0 {
			return n.match(nil)
		}
		for _, e := range v {
			if n.matchValue(e) {
				return true
			}
		}
		return false
	}
	return n.match(nil)
}

// leaf is a compiled list of match values: the field matches when any of them matches
// any scalar value of the event field.
type leaf struct {
	strs     []string            // exact strings, when few
	strSet   map[string]struct{} // exact strings, when many
	nums     []number            // exact numbers
	trueOK   bool
	falseOK  bool
	nullOK   bool
	anyValue bool // exists: true
	absentOK bool // exists: false
	ops      []matcher
}

// setThreshold is the number of exact strings above which a leaf uses a map.
const setThreshold = 8

func (l *leaf) addString(s string) {
	if l.strSet != nil {
		l.strSet[s] = struct{}{}
		return
	}
	l.strs = append(l.strs, s)
	if len(l.strs) > setThreshold {
		l.strSet = make(map[string]struct{}, len(l.strs))
		for _, x := range l.strs {
			l.strSet[x] = struct{}{}
		}
		l.strs = nil
	}
}

// exactStrings returns the leaf's values if it holds exact strings only, for indexing.
func (l *leaf) exactStrings() []string {
	if len(l.nums) > 0 || l.trueOK || l.falseOK || l.nullOK || l.anyValue || l.absentOK || len(l.ops) > 0 {
		return nil
	}
	if l.strSet != nil {
		out := make([]string, 0, len(l.strSet))
		for s := range l.strSet {
			out = append(out, s)
		}
		return out
	}
	return l.strs
}

// match reports whether the event field (v, present) satisfies l. Objects are not leaf
// values: a field holding an object, or an array with no scalar in it, counts as absent.
func (l *leaf) match(v any, present bool) bool {
	if !present {
		return l.absentOK
	}
	switch x := v.(type) {
	case map[string]any:
		return l.absentOK
	case []any:
		found := false
		if l.matchArray(x, &found) {
			return true
		}
		return !found && l.absentOK
	}
	sc := toScalar(v)
	return l.matchScalar(&sc)
}

func (l *leaf) matchArray(arr []any, found *bool) bool {
	for _, e := range arr {
		switch x := e.(type) {
		case map[string]any:
			continue
		case []any:
			if l.matchArray(x, found) {
				return true
			}
			continue
		}
		*found = true
		sc := toScalar(e)
		if l.matchScalar(&sc) {
			return true
		}
	}
	return false
}

func (l *leaf) matchScalar(sc *scalar) bool {
	if l.anyValue {
		return true
	}
	switch sc.kind {
	case kindString:
		if l.strSet != nil {
			if _, ok := l.strSet[sc.s]; ok {
				return true
			}
		} else {
			for _, s := range l.strs {
				if s == sc.s {
					return true
				}
			}
		}
	case kindNumber:
		for i := range l.nums {
			if l.nums[i].equal(sc) {
				return true
			}
		}
	case kindBool:
		if sc.b && l.trueOK || !sc.b && l.falseOK {
			return true
		}
	case kindNull:
		if l.nullOK {
			return true
		}
	}
	for _, m := range l.ops {
		if m.match(*sc) {
			return true
		}
	}
	return false
}

type kind uint8

const (
	kindOther kind = iota // a Go type encoding/json does not produce
	kindString
	kindNumber
	kindBool
	kindNull
)

// scalar is one leaf value of an event, converted once for all matchers.
type scalar struct {
	kind    kind
	s       string  // the string, or a number's JSON text ("" when decoded as float64)
	b       bool    // the boolean
	f       float64 // the number
	q       int64   // the number rounded by quantize, valid when inRange
	inRange bool    // the number is within ±MaxNumeric
}

func toScalar(v any) scalar {
	switch v := v.(type) {
	case string:
		return scalar{kind: kindString, s: v}
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		sc := scalar{kind: kindNumber, s: string(v), f: f}
		if err == nil {
			sc.setRange()
		}
		return sc
	case float64:
		sc := scalar{kind: kindNumber, f: v}
		sc.setRange()
		return sc
	case bool:
		return scalar{kind: kindBool, b: v}
	case nil:
		return scalar{kind: kindNull}
	}
	return scalar{kind: kindOther}
}

func (sc *scalar) setRange() {
	if math.Abs(sc.f) <= MaxNumeric {
		sc.inRange = true
		sc.q = quantize(sc.f)
	}
}

// number is an exact number in a pattern.
type number struct {
	text    string
	f       float64
	q       int64
	inRange bool
}

func newNumber(text string) number {
	n := number{text: text}
	f, err := strconv.ParseFloat(text, 64)
	if err == nil {
		n.f = f
		if math.Abs(f) <= MaxNumeric {
			n.inRange, n.q = true, quantize(f)
		}
	} else {
		n.f = math.NaN()
	}
	return n
}

func (n *number) equal(sc *scalar) bool {
	if sc.s != "" && sc.s == n.text {
		return true
	}
	if n.inRange && sc.inRange {
		return n.q == sc.q
	}
	// A float64 event has no text; beyond the numeric range compare the values.
	return sc.s == "" && !n.inRange && !sc.inRange && sc.f == n.f
}

// matcher is one precompiled operator of a leaf.
type matcher interface {
	match(sc scalar) bool
}

type prefixMatcher struct {
	s    string
	fold bool
}

func (m prefixMatcher) match(sc scalar) bool {
	if sc.kind != kindString {
		return false
	}
	if m.fold {
		return hasPrefixFold(sc.s, m.s)
	}
	return len(sc.s) >= len(m.s) && sc.s[:len(m.s)] == m.s
}

type suffixMatcher struct {
	s    string
	fold bool
}

func (m suffixMatcher) match(sc scalar) bool {
	if sc.kind != kindString {
		return false
	}
	if m.fold {
		return hasSuffixFold(sc.s, m.s)
	}
	return len(sc.s) >= len(m.s) && sc.s[len(sc.s)-len(m.s):] == m.s
}

type foldMatcher struct{ s string }

func (m foldMatcher) match(sc scalar) bool {
	return sc.kind == kindString && equalFold(sc.s, m.s)
}

type cidrMatcher struct{ p netip.Prefix }

func (m cidrMatcher) match(sc scalar) bool {
	if sc.kind != kindString {
		return false
	}
	a, err := netip.ParseAddr(sc.s)
	if err != nil || a.Zone() != "" {
		return false
	}
	if m.p.Addr().Is4() {
		a = a.Unmap()
	}
	return m.p.Contains(a)
}

// numericMatcher holds bounds in quantized units.
type numericMatcher struct {
	lo, hi         int64
	hasLo, hasHi   bool
	loOpen, hiOpen bool
}

func (m numericMatcher) match(sc scalar) bool {
	if sc.kind != kindNumber || !sc.inRange {
		return false
	}
	q := sc.q
	if m.hasLo && (q < m.lo || m.loOpen && q == m.lo) {
		return false
	}
	if m.hasHi && (q > m.hi || m.hiOpen && q == m.hi) {
		return false
	}
	return true
}

// The anything-but matchers match every present scalar except the excluded ones. A
// value of another type than the excluded ones is never excluded.

type butStrings struct{ set map[string]struct{} }

func (m butStrings) match(sc scalar) bool {
	if sc.kind != kindString {
		return true
	}
	_, excluded := m.set[sc.s]
	return !excluded
}

type butNumbers struct{ set map[int64]struct{} }

func (m butNumbers) match(sc scalar) bool {
	if sc.kind != kindNumber || !sc.inRange {
		return true
	}
	_, excluded := m.set[sc.q]
	return !excluded
}

type butPrefix struct{ list []string }

func (m butPrefix) match(sc scalar) bool {
	if sc.kind != kindString {
		return true
	}
	for _, p := range m.list {
		if len(sc.s) >= len(p) && sc.s[:len(p)] == p {
			return false
		}
	}
	return true
}

type butSuffix struct{ list []string }

func (m butSuffix) match(sc scalar) bool {
	if sc.kind != kindString {
		return true
	}
	for _, p := range m.list {
		if len(sc.s) >= len(p) && sc.s[len(sc.s)-len(p):] == p {
			return false
		}
	}
	return true
}

type butFold struct{ set map[string]struct{} }

func (m butFold) match(sc scalar) bool {
	if sc.kind != kindString {
		return true
	}
	_, excluded := m.set[foldKey(sc.s)]
	return !excluded
}

type butWildcard struct{ list []*wildcard }

func (m butWildcard) match(sc scalar) bool {
	if sc.kind != kindString {
		return true
	}
	for _, w := range m.list {
		if w.matchString(sc.s) {
			return false
		}
	}
	return true
}
