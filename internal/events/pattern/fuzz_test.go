package pattern_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/pattern"
)

func decodeForBench(tb testing.TB, event string) any {
	tb.Helper()
	d := json.NewDecoder(strings.NewReader(event))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// seedConformance adds every pattern (and event) of the conformance table to the corpus.
func seedConformance(f *testing.F, withEvents bool) {
	data, err := os.ReadFile("testdata/conformance.json")
	if err != nil {
		f.Fatal(err)
	}
	var cases []conformanceCase
	if err := json.Unmarshal(data, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		if withEvents {
			if len(c.Event) > 0 {
				f.Add([]byte(c.Pattern), []byte(c.Event))
			}
		} else {
			f.Add([]byte(c.Pattern))
		}
	}
}

// FuzzCompile: Compile never panics, and every failure is an errs.Invalid error.
func FuzzCompile(f *testing.F) {
	seedConformance(f, false)
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := pattern.Compile(src)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Compile error kind = %v, want invalid: %v", errs.KindOf(err), err)
			}
			if p != nil {
				t.Fatal("Compile returned a pattern and an error")
			}
			return
		}
		if p == nil {
			t.Fatal("Compile returned neither a pattern nor an error")
		}
	})
}

// FuzzMatch: for any valid pattern, Match never panics and never errors on valid JSON,
// errors on invalid JSON, and agrees with MatchValue and with a one-rule Set.
func FuzzMatch(f *testing.F) {
	seedConformance(f, true)
	f.Fuzz(func(t *testing.T, src, event []byte) {
		p, err := pattern.Compile(src)
		if err != nil {
			return
		}
		got, err := p.Match(event)
		var v any
		d := json.NewDecoder(bytes.NewReader(event))
		d.UseNumber()
		valid := json.Valid(event)
		if !valid {
			if err == nil {
				t.Fatalf("Match accepted invalid JSON %q", event)
			}
			return
		}
		if err != nil {
			t.Fatalf("Match errored on valid JSON %q: %v", event, err)
		}
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if p.MatchValue(v) != got {
			t.Fatalf("MatchValue disagrees with Match on %q", event)
		}
		s := pattern.NewSet()
		s.Add("r", p)
		names, err := s.MatchAll(event)
		if err != nil {
			t.Fatal(err)
		}
		if (len(names) == 1) != got {
			t.Fatalf("Set.MatchAll = %v, Match = %v on %q", names, got, event)
		}
	})
}
