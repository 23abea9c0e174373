package pattern_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/pattern"
)

func mustCompile(t testing.TB, src string) *pattern.Pattern {
	t.Helper()
	p, err := pattern.Compile([]byte(src))
	if err != nil {
		t.Fatalf("Compile(%s): %v", src, err)
	}
	return p
}

func TestMatchInvalidEvent(t *testing.T) {
	p := mustCompile(t, `{"source": ["a"]}`)
	for _, ev := range []string{``, `{`, `{"source": "a"} x`, `{"source": 'a'}`, `nul`} {
		ok, err := p.Match([]byte(ev))
		if err == nil {
			t.Errorf("Match(%q) = %v, nil; want an error", ev, ok)
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("Match(%q) error kind = %v, want invalid", ev, errs.KindOf(err))
		}
	}
}

func TestMatchNonObjectEvents(t *testing.T) {
	p := mustCompile(t, `{"a": [{"exists": false}]}`)
	for _, ev := range []string{`[]`, `"a"`, `1`, `null`, `true`} {
		ok, err := p.Match([]byte(ev))
		if err != nil || ok {
			t.Errorf("Match(%s) = %v, %v; want false, nil", ev, ok, err)
		}
	}
	ok, err := p.Match([]byte(`{}`))
	if err != nil || !ok {
		t.Errorf("Match({}) = %v, %v; want true, nil", ok, err)
	}
}

func TestCompileErrorsHaveHints(t *testing.T) {
	tests := []struct {
		pattern string
		hint    string
	}{
		{`{"source": "a"}`, `wrap the value in an array: "source": ["a"]`},
		{`{"a": [{"numeric": [">"]}]}`, `[">", 0, "<=", 5]`},
		{`{"a": [{"cidr": "x"}]}`, `"10.0.0.0/24"`},
		{`{"a": [{"wildcard": "**"}]}`, `one '*' already matches`},
		{`{}`, `at least one field`},
		{`{"a": []}`, `at least one value`},
		{`not json`, `JSON object`},
	}
	for _, tt := range tests {
		_, err := pattern.Compile([]byte(tt.pattern))
		if err == nil {
			t.Errorf("Compile(%s) succeeded, want error", tt.pattern)
			continue
		}
		if h := errs.HintOf(err); !strings.Contains(h, tt.hint) {
			t.Errorf("Compile(%s) hint = %q, want it to contain %q", tt.pattern, h, tt.hint)
		}
	}
}

func TestMatchValueNumbers(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		value   any
		want    bool
	}{
		{"json.Number equal value", `{"n": [3]}`, json.Number("3.0"), true},
		{"float64 equal value", `{"n": [3]}`, 3.0, true},
		{"json.Number beyond range, same text", `{"n": [9007199254740993]}`, json.Number("9007199254740993"), true},
		{"json.Number beyond range, other text", `{"n": [9007199254740993]}`, json.Number("9007199254740992"), false},
		{"float64 beyond range compares values", `{"n": [6e9]}`, 6e9, true},
		{"float64 beyond range differs", `{"n": [6e9]}`, 7e9, false},
		{"numeric on float64", `{"n": [{"numeric": [">", 1.5]}]}`, 1.6, true},
		{"numeric on huge json.Number", `{"n": [{"numeric": ["<", 0]}]}`, json.Number("-1e400"), false},
		{"anything-but numeric on huge number", `{"n": [{"anything-but": [1]}]}`, json.Number("1e400"), true},
		{"other Go type counts as present", `{"n": [{"exists": true}]}`, int64(3), true},
		{"other Go type matches no value", `{"n": [3]}`, int64(3), false},
		{"other Go type passes anything-but", `{"n": [{"anything-but": "x"}]}`, int64(3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.pattern)
			if got := p.MatchValue(map[string]any{"n": tt.value}); got != tt.want {
				t.Errorf("MatchValue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWildcardTable(t *testing.T) {
	tests := []struct {
		wildcard string
		value    string
		want     bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "a", true},
		{"a*", "ba", false},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "abcb", false},
		{"*.*", "file.tar.gz", true},
		{"*.*", "file", false},
		{"*aa*", "aa", true},
		{"*aa*aa*", "aaa", false},
		{"*aa*aa*", "aaaa", true},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{`\\*`, `\path`, true},
		{"日*語", "日本語", true},
	}
	for _, tt := range tests {
		src, _ := json.Marshal(map[string]any{"v": []any{map[string]any{"wildcard": tt.wildcard}}})
		p := mustCompile(t, string(src))
		if got := p.MatchValue(map[string]any{"v": tt.value}); got != tt.want {
			t.Errorf("wildcard %q on %q = %v, want %v", tt.wildcard, tt.value, got, tt.want)
		}
		// anything-but wildcard is the exact complement on strings.
		src, _ = json.Marshal(map[string]any{"v": []any{map[string]any{"anything-but": map[string]any{"wildcard": tt.wildcard}}}})
		q := mustCompile(t, string(src))
		if got := q.MatchValue(map[string]any{"v": tt.value}); got == tt.want {
			t.Errorf("anything-but wildcard %q on %q = %v, want %v", tt.wildcard, tt.value, got, !tt.want)
		}
	}
}

func TestIgnoreCaseTable(t *testing.T) {
	tests := []struct {
		op    string
		arg   string
		value string
		want  bool
	}{
		{"equals-ignore-case", "Alice", "aLICE", true},
		{"equals-ignore-case", "Alice", "Alic", false},
		{"equals-ignore-case", "ΣΊΣΥΦΟΣ", "σίσυφος", true},
		{"equals-ignore-case", "k", "\u212a", true}, // Kelvin sign folds to k
		{"prefix", "EVENTB", "eventbridge", true},
		{"prefix", "évé", "ÉVÉNEMENT", true},
		{"prefix", "abc", "ab", false},
		{"suffix", "TBRIDGE", "eventbridge", true},
		{"suffix", "é.PNG", "photo-É.png", true},
		{"suffix", "xpng", "png", false},
	}
	for _, tt := range tests {
		var arg any = tt.arg
		if tt.op != "equals-ignore-case" {
			arg = map[string]any{"equals-ignore-case": tt.arg}
		}
		src, _ := json.Marshal(map[string]any{"v": []any{map[string]any{tt.op: arg}}})
		p := mustCompile(t, string(src))
		if got := p.MatchValue(map[string]any{"v": tt.value}); got != tt.want {
			t.Errorf("%s %q on %q = %v, want %v", tt.op, tt.arg, tt.value, got, tt.want)
		}
		if tt.op == "equals-ignore-case" {
			src, _ := json.Marshal(map[string]any{"v": []any{map[string]any{"anything-but": map[string]any{"equals-ignore-case": []string{"zzz", tt.arg}}}}})
			q := mustCompile(t, string(src))
			if got := q.MatchValue(map[string]any{"v": tt.value}); got == tt.want {
				t.Errorf("anything-but equals-ignore-case %q on %q = %v, want %v", tt.arg, tt.value, got, !tt.want)
			}
		}
	}
}

func TestPatternConcurrentUse(t *testing.T) {
	p := mustCompile(t, `{"detail": {"size": [{"numeric": [">", 10]}], "name": [{"prefix": {"equals-ignore-case": "db-"}}]}}`)
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			ok := true
			for j := 0; j < 200; j++ {
				m, err := p.Match([]byte(`{"detail": {"size": 11, "name": "DB-main"}}`))
				ok = ok && err == nil && m
			}
			done <- ok
		}()
	}
	for i := 0; i < 8; i++ {
		if !<-done {
			t.Fatal("concurrent Match returned a wrong result")
		}
	}
}
