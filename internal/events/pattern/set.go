package pattern

import (
	"slices"
	"sync"
)

const opMatchAll = "pattern.MatchAll"

// Set holds many named patterns (rules) and finds the ones an event matches. It decodes
// the event once and indexes rules by the exact values of their top-level source field
// (or, failing that, detail-type) so that rules for other sources are skipped without
// being evaluated. A Set is safe for concurrent use; the zero value is not, use NewSet.
type Set struct {
	mu           sync.RWMutex
	rules        []rule
	byName       map[string]int
	bySource     map[string][]int
	byDetailType map[string][]int
	unindexed    []int
}

type rule struct {
	name    string
	pattern *Pattern
}

// NewSet returns an empty Set.
func NewSet() *Set {
	s := &Set{byName: map[string]int{}}
	s.reindex()
	return s
}

// Add adds the pattern p under name. Adding a name that is already present replaces its
// pattern and keeps its position in MatchAll's result order. A nil p removes the name.
func (s *Set) Add(name string, p *Pattern) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == nil {
		s.removeLocked(name)
		return
	}
	if i, ok := s.byName[name]; ok {
		s.rules[i].pattern = p
		s.reindex()
		return
	}
	s.byName[name] = len(s.rules)
	s.rules = append(s.rules, rule{name: name, pattern: p})
	s.index(len(s.rules) - 1)
}

// Remove removes the rule called name and reports whether it was present.
func (s *Set) Remove(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(name)
}

func (s *Set) removeLocked(name string) bool {
	i, ok := s.byName[name]
	if !ok {
		return false
	}
	s.rules = slices.Delete(s.rules, i, i+1)
	s.byName = make(map[string]int, len(s.rules))
	for j, r := range s.rules {
		s.byName[r.name] = j
	}
	s.reindex()
	return true
}

// Len returns the number of rules in the set.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.rules)
}

func (s *Set) reindex() {
	s.bySource = map[string][]int{}
	s.byDetailType = map[string][]int{}
	s.unindexed = nil
	for i := range s.rules {
		s.index(i)
	}
}

// index files rule i under the exact values of its source field, else of its
// detail-type field, else as unindexed. A top-level field is ANDed with everything else
// in the pattern, so a rule cannot match an event whose source is not one of its values.
func (s *Set) index(i int) {
	root := s.rules[i].pattern.root
	if vals := topLevelExact(root, "source"); vals != nil {
		for _, v := range vals {
			s.bySource[v] = append(s.bySource[v], i)
		}
		return
	}
	if vals := topLevelExact(root, "detail-type"); vals != nil {
		for _, v := range vals {
			s.byDetailType[v] = append(s.byDetailType[v], i)
		}
		return
	}
	s.unindexed = append(s.unindexed, i)
}

func topLevelExact(n *node, name string) []string {
	for i := range n.fields {
		if f := &n.fields[i]; f.name == name && f.leaf != nil {
			return f.leaf.exactStrings()
		}
	}
	return nil
}

// MatchAll decodes the JSON event once and returns the names of the rules it matches, in
// the order they were added. The error is non-nil (errs.Invalid) only when the event is
// not valid JSON.
func (s *Set) MatchAll(event []byte) ([]string, error) {
	v, err := decodeEvent(event, opMatchAll)
	if err != nil {
		return nil, err
	}
	return s.MatchAllValue(v), nil
}

// MatchAllValue is MatchAll for an event already decoded as MatchValue describes.
func (s *Set) MatchAllValue(v any) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	cand := make([]int, 0, 16)
	cand = appendIndexed(cand, s.bySource, obj["source"])
	cand = appendIndexed(cand, s.byDetailType, obj["detail-type"])
	cand = append(cand, s.unindexed...)
	slices.Sort(cand)
	cand = slices.Compact(cand)
	var names []string
	for _, i := range cand {
		if s.rules[i].pattern.root.match(obj) {
			names = append(names, s.rules[i].name)
		}
	}
	return names
}

// appendIndexed appends the rules filed under every string the event field v holds (a
// string, or strings inside arrays, which match by intersection).
func appendIndexed(dst []int, index map[string][]int, v any) []int {
	switch v := v.(type) {
	case string:
		return append(dst, index[v]...)
	case []any:
		for _, e := range v {
			dst = appendIndexed(dst, index, e)
		}
	}
	return dst
}
