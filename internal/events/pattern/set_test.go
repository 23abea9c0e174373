package pattern_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/pattern"
)

func TestSetMatchAll(t *testing.T) {
	s := pattern.NewSet()
	rules := []struct{ name, pattern string }{
		{"backup-failed", `{"source": ["rewind.backup"], "detail-type": ["Backup Job State Change"], "detail": {"state": ["FAILED"]}}`},
		{"any-backup", `{"source": ["rewind.backup", "rewind.copy"]}`},
		{"restore", `{"source": ["rewind.restore"]}`},
		{"by-type", `{"detail-type": ["Backup Job State Change"]}`},
		{"site-a", `{"site": ["site-a"]}`},
		{"prefix-source", `{"source": [{"prefix": "rewind."}], "detail": {"state": ["FAILED", "EXPIRED"]}}`},
		{"or-source", `{"$or": [{"source": ["rewind.restore"]}, {"detail": {"state": ["FAILED"]}}]}`},
	}
	for _, r := range rules {
		s.Add(r.name, mustCompile(t, r.pattern))
	}
	if s.Len() != len(rules) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(rules))
	}
	tests := []struct {
		event string
		want  []string
	}{
		{`{"source": "rewind.backup", "detail-type": "Backup Job State Change", "site": "site-a", "detail": {"state": "FAILED"}}`,
			[]string{"backup-failed", "any-backup", "by-type", "site-a", "prefix-source", "or-source"}},
		{`{"source": "rewind.backup", "detail-type": "Backup Job State Change", "detail": {"state": "COMPLETED"}}`,
			[]string{"any-backup", "by-type"}},
		{`{"source": "rewind.restore", "detail-type": "Restore Job State Change", "detail": {"state": "EXPIRED"}}`,
			[]string{"restore", "prefix-source", "or-source"}},
		{`{"source": ["rewind.copy", "rewind.restore"], "detail": {}}`,
			[]string{"any-backup", "restore", "or-source"}},
		{`{"source": "other", "detail-type": "x"}`, nil},
		{`[1, 2]`, nil},
	}
	for _, tt := range tests {
		got, err := s.MatchAll([]byte(tt.event))
		if err != nil {
			t.Fatalf("MatchAll(%s): %v", tt.event, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("MatchAll(%s) = %q, want %q", tt.event, got, tt.want)
		}
	}
	if _, err := s.MatchAll([]byte(`{"source":`)); !errs.Is(err, errs.Invalid) {
		t.Errorf("MatchAll(invalid JSON) error = %v, want an invalid error", err)
	}
}

func TestSetReplaceAndRemove(t *testing.T) {
	s := pattern.NewSet()
	s.Add("a", mustCompile(t, `{"source": ["x"]}`))
	s.Add("b", mustCompile(t, `{"source": ["x"]}`))
	s.Add("c", mustCompile(t, `{"detail-type": ["t"]}`))
	event := []byte(`{"source": "y", "detail-type": "t"}`)

	// Replacing "a" re-files it under its new source and keeps its position.
	s.Add("a", mustCompile(t, `{"source": ["y"]}`))
	if got, _ := s.MatchAll(event); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after replace: %q, want [a c]", got)
	}
	if got, _ := s.MatchAll([]byte(`{"source": "x"}`)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("old index entry survived the replace: %q", got)
	}
	if !s.Remove("a") || s.Remove("a") {
		t.Fatal("Remove should report true once, then false")
	}
	if got, _ := s.MatchAll(event); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after remove: %q, want [c]", got)
	}
	s.Add("c", nil)
	if s.Len() != 1 {
		t.Fatalf("Len = %d after Add(name, nil), want 1", s.Len())
	}
}

// TestSetAgreesWithPatterns checks the index never hides a match: the Set's answer is
// exactly the rules whose Pattern.Match is true.
func TestSetAgreesWithPatterns(t *testing.T) {
	rules := benchRules(300)
	s := pattern.NewSet()
	for i, r := range rules {
		s.Add(fmt.Sprint(i), r)
	}
	for _, ev := range benchEvents() {
		var want []string
		for i, r := range rules {
			ok, err := r.Match(ev)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				want = append(want, fmt.Sprint(i))
			}
		}
		got, err := s.MatchAll(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("event %s: Set = %q, patterns = %q", ev, got, want)
		}
		if len(want) == 0 {
			t.Errorf("event %s matches no rule; the generated rules should cover it", ev)
		}
	}
}

func TestSetConcurrentUse(t *testing.T) {
	s := pattern.NewSet()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				s.Add(fmt.Sprintf("r%d-%d", i, j%10), mustCompile(t, `{"source": ["rewind.backup"]}`))
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if _, err := s.MatchAll([]byte(`{"source": "rewind.backup"}`)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() != 40 {
		t.Fatalf("Len = %d, want 40", s.Len())
	}
}
