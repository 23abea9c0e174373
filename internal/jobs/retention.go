package jobs

import (
	"sort"
	"time"

	"github.com/rewind-dr/rewind/internal/plan"
	"github.com/rewind-dr/rewind/internal/vault"
)

// policy is one configured retention that applies to a resource's points in a vault.
type policy struct {
	name string // plan/rule, for people
	ret  plan.Retention
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// selectRemovals returns the points of vaultName to delete: those of resource (every
// resource when empty) that every retention policy configured for them removes. Policies
// are applied separately to each (resource, host) group, as `rewind forget` does; a
// resource with no policy, or with one rule that keeps everything, loses nothing.
func (r *Runner) selectRemovals(points []*vault.Point, vaultName, resource string, now time.Time) []*vault.Point {
	type key struct{ resource, host string }
	groups := map[key][]*vault.Point{}
	for _, p := range points {
		if resource == "" || p.Resource == resource {
			k := key{p.Resource, p.Host}
			groups[k] = append(groups[k], p)
		}
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].resource != keys[j].resource {
			return keys[i].resource < keys[j].resource
		}
		return keys[i].host < keys[j].host
	})
	var out []*vault.Point
	for _, k := range keys {
		pols, ok := r.policies(vaultName, k.resource)
		if !ok || len(pols) == 0 {
			continue
		}
		out = append(out, removals(groups[k], pols, now)...)
	}
	return out
}

// removals applies every policy to one group of points and returns those all of them
// remove, oldest first.
func removals(group []*vault.Point, pols []policy, now time.Time) []*vault.Point {
	byID := map[string]*vault.Point{}
	cands := make([]plan.Candidate, 0, len(group))
	for _, p := range group {
		byID[p.ID.String()] = p
		cands = append(cands, plan.Candidate{ID: p.ID.String(), Time: p.Time, Tags: p.Tags})
	}
	kept := map[string]bool{}
	for _, pol := range pols {
		for _, d := range plan.Apply(cands, pol.ret, now, time.Local) {
			if d.Keep {
				kept[d.ID] = true
			}
		}
	}
	var out []*vault.Point
	for _, c := range cands {
		if !kept[c.ID] {
			out = append(out, byID[c.ID])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
