package pattern

import (
	"strings"
	"testing"
)

func TestFoldKeyAgreesWithEqualFold(t *testing.T) {
	words := []string{"", "a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "straße", "STRASSE", "ǅ", "ǆ", "Ǆ", "Σ", "σ", "ς", "abc", "ABD", "\xff", "\xfe"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q)==foldKey(%q) is %v, EqualFold is %v", a, b, got, want)
			}
		}
	}
}

func FuzzFoldKey(f *testing.F) {
	f.Add("Hello", "hELLO")
	f.Add("\u212a", "k")
	f.Add("ß", "SS")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("foldKey(%q)==foldKey(%q) is %v, EqualFold is %v", a, b, got, want)
		}
		if hasPrefixFold(a, b) != hasPrefixFoldSlow(a, b) {
			t.Fatalf("hasPrefixFold(%q, %q) disagrees with the rune-by-rune definition", a, b)
		}
	})
}

// hasPrefixFoldSlow is the definition hasPrefixFold implements: the first runes of s,
// as many as prefix has, are EqualFold to prefix.
func hasPrefixFoldSlow(s, prefix string) bool {
	pr := []rune(prefix)
	sr := []rune(s)
	if len(sr) < len(pr) {
		return false
	}
	return strings.EqualFold(string(sr[:len(pr)]), string(pr))
}
