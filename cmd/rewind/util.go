package main

import (
	"sort"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parseTags parses key=value pairs given to --tag.
func parseTags(pairs []string) (map[string]string, error) {
	tags := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, errs.Errorf("--tag", errs.Invalid, "tag %q is not key=value", p).WithHint("write --tag app=shop")
		}
		tags[k] = v
	}
	return tags, nil
}

// tagsMatch reports whether have contains every pair of want.
func tagsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
