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

// conformanceCase is one row of testdata/conformance.json. Pattern is the pattern as
// JSON, or a JSON string holding raw pattern text (for invalid JSON and duplicate keys).
// A case either expects an error containing Error, or a match result for Event.
type conformanceCase struct {
	Name    string          `json:"name"`
	Pattern json.RawMessage `json:"pattern"`
	Event   json.RawMessage `json:"event"`
	Match   *bool           `json:"match"`
	Error   string          `json:"error"`
}

func (c conformanceCase) patternBytes(t *testing.T) []byte {
	t.Helper()
	if bytes.HasPrefix(bytes.TrimSpace(c.Pattern), []byte(`"`)) {
		var raw string
		if err := json.Unmarshal(c.Pattern, &raw); err != nil {
			t.Fatalf("bad raw pattern in case %q: %v", c.Name, err)
		}
		return []byte(raw)
	}
	return c.Pattern
}

func loadConformance(t testing.TB) []conformanceCase {
	t.Helper()
	data, err := os.ReadFile("testdata/conformance.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []conformanceCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("testdata/conformance.json: %v", err)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Fatalf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		if (c.Error == "") == (c.Match == nil) {
			t.Fatalf("case %q must have exactly one of match and error", c.Name)
		}
		if c.Match != nil && len(c.Event) == 0 {
			t.Fatalf("case %q has match but no event", c.Name)
		}
	}
	return cases
}

func TestConformance(t *testing.T) {
	for _, c := range loadConformance(t) {
		t.Run(c.Name, func(t *testing.T) {
			p, err := pattern.Compile(c.patternBytes(t))
			if c.Error != "" {
				if err == nil {
					t.Fatalf("Compile succeeded, want error containing %q", c.Error)
				}
				if !errs.Is(err, errs.Invalid) {
					t.Errorf("error kind = %v, want invalid", errs.KindOf(err))
				}
				if !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("error = %q, want it to contain %q", err, c.Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := p.Match(c.Event)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != *c.Match {
				t.Fatalf("Match = %v, want %v", got, *c.Match)
			}

			// The same event decoded with plain float64 numbers must give the same answer.
			var plain any
			if err := json.Unmarshal(c.Event, &plain); err != nil {
				t.Fatal(err)
			}
			if got := p.MatchValue(plain); got != *c.Match {
				t.Errorf("MatchValue(float64 numbers) = %v, want %v", got, *c.Match)
			}

			// A Set holding only this rule must agree.
			s := pattern.NewSet()
			s.Add("rule", p)
			names, err := s.MatchAll(c.Event)
			if err != nil {
				t.Fatalf("MatchAll: %v", err)
			}
			if (len(names) == 1) != *c.Match {
				t.Errorf("Set.MatchAll = %v, want match %v", names, *c.Match)
			}
		})
	}
}
