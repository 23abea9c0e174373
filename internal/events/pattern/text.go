package pattern

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// wildcard is a compiled wildcard pattern: literal parts separated by '*'. A pattern
// without '*' has one part.
type wildcard struct {
	parts []string
}

// compileWildcard parses a wildcard pattern: '*' matches any run of characters
// (including none), "\*" is a literal star and "\\" a literal backslash. Consecutive
// stars and any other escape are rejected, as EventBridge rejects them.
func compileWildcard(s, path string) (*wildcard, error) {
	var parts []string
	var cur strings.Builder
	prevStar := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '*':
			if prevStar {
				return nil, invalid(path, "wildcard %q has consecutive '*' characters, which are not allowed", s).
					WithHint("one '*' already matches any run of characters")
			}
			parts = append(parts, cur.String())
			cur.Reset()
			prevStar = true
			continue
		case '\\':
			if i+1 >= len(s) {
				return nil, invalid(path, "wildcard %q ends with an unfinished escape", s).
					WithHint(`write \\ for a literal backslash and \* for a literal star`)
			}
			next := s[i+1]
			if next != '*' && next != '\\' {
				return nil, invalid(path, "wildcard %q has the invalid escape \\%c", s, next).
					WithHint(`only \* (literal star) and \\ (literal backslash) may be escaped`)
			}
			cur.WriteByte(next)
			i++
		default:
			cur.WriteByte(c)
		}
		prevStar = false
	}
	parts = append(parts, cur.String())
	return &wildcard{parts: parts}, nil
}

func (w *wildcard) match(sc scalar) bool {
	return sc.kind == kindString && w.matchString(sc.s)
}

func (w *wildcard) matchString(s string) bool {
	if len(w.parts) == 1 {
		return s == w.parts[0]
	}
	first, last := w.parts[0], w.parts[len(w.parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	if !strings.HasSuffix(s, last) {
		return false
	}
	s = s[:len(s)-len(last)]
	for _, p := range w.parts[1 : len(w.parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// equalFold reports whether a and b are equal under Unicode simple case folding, the
// comparison equals-ignore-case uses.
func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// runeEqualFold reports whether a and b are in the same simple case-folding orbit.
func runeEqualFold(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether s begins with prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		pr, pn := utf8.DecodeRuneInString(prefix)
		sr, sn := utf8.DecodeRuneInString(s)
		if !runeEqualFold(pr, sr) {
			return false
		}
		prefix, s = prefix[pn:], s[sn:]
	}
	return true
}

// hasSuffixFold reports whether s ends with suffix, ignoring case.
func hasSuffixFold(s, suffix string) bool {
	for suffix != "" {
		if s == "" {
			return false
		}
		pr, pn := utf8.DecodeLastRuneInString(suffix)
		sr, sn := utf8.DecodeLastRuneInString(s)
		if !runeEqualFold(pr, sr) {
			return false
		}
		suffix, s = suffix[:len(suffix)-pn], s[:len(s)-sn]
	}
	return true
}

// foldKey maps s to a canonical form such that foldKey(a) == foldKey(b) exactly when
// strings.EqualFold(a, b): every rune becomes the smallest rune of its case-folding
// orbit.
func foldKey(s string) string {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c >= 'a' && c <= 'z' {
			simple = false
			break
		}
	}
	if simple {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
