package main

import (
	"context"
	"sort"

	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/vault"
)

// logProblems checks the continuity of every PostgreSQL resource's WAL in r: WAL missing
// after a base backup (a deleted or never-shipped segment) is a problem naming the
// resource, the timeline, the missing LSN range and segment files, since a restore to a
// time past it would fail.
func logProblems(ctx context.Context, r *vault.Repository) ([]vault.Problem, error) {
	points, err := r.Points(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var resources []string
	for _, p := range points {
		if (p.Kind == postgres.KindBase || p.Kind == postgres.KindWAL) && !seen[p.Resource] {
			seen[p.Resource] = true
			resources = append(resources, p.Resource)
		}
	}
	sort.Strings(resources)
	var out []vault.Problem
	for _, res := range resources {
		rep, err := postgres.Continuity(ctx, postgres.FromVault(r), res)
		if err != nil {
			out = append(out, vault.Problem{What: "unreadable WAL", Object: res, Err: err.Error()})
			continue
		}
		for _, g := range rep.Gaps {
			out = append(out, vault.Problem{What: "WAL gap", Object: res, Err: g.String(), Paths: g.Segments})
		}
	}
	return out, nil
}
