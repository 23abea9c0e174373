package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

// RebuildReport says what Rebuild found.
type RebuildReport struct {
	Vaults  int // vaults read
	Points  int // points found in them (now AVAILABLE in the catalog)
	Added   int // of those, points the catalog did not know
	Missing int // catalog points no longer in their vault (marked MISSING)
}

// Rebuild makes the catalog's recovery points match the vaults, which are the truth: every
// point of every configured vault is written as AVAILABLE (a lost catalog is rebuilt whole),
// and a catalog point that its vault no longer holds is marked MISSING, never deleted, and
// nothing is ever deleted from a vault. A vault that cannot be read is reported in the
// error after the others are rebuilt; its catalog points are left as they were.
func Rebuild(ctx context.Context, env Env) (*RebuildReport, error) {
	rep := &RebuildReport{}
	names := make([]string, 0, len(env.Config.Vaults))
	for n := range env.Config.Vaults {
		names = append(names, n)
	}
	sort.Strings(names)
	var failed []error
	for _, name := range names {
		if err := rebuildVault(ctx, env, name, rep); err != nil {
			failed = append(failed, fmt.Errorf("vault %s: %w", name, err))
		}
	}
	if len(failed) > 0 {
		return rep, errs.E("jobs.Rebuild", errs.KindOf(failed[0]), errors.Join(failed...)).
			WithHint("the other vaults were rebuilt; fix access to these and run the rebuild again")
	}
	return rep, nil
}

func rebuildVault(ctx context.Context, env Env, name string, rep *RebuildReport) error {
	repo, err := env.OpenVault(ctx, name)
	if err != nil {
		return err
	}
	points, err := repo.Points(ctx)
	if err != nil {
		return err
	}
	rep.Vaults++
	return env.Store.Tx(ctx, func(tx catalog.Tx) error {
		vname := name
		known, err := tx.ListPoints(ctx, catalog.PointFilter{Vault: &vname})
		if err != nil {
			return err
		}
		byID := make(map[string]*catalog.Point, len(known))
		for _, p := range known {
			byID[p.ID] = p
		}
		inVault := make(map[string]bool, len(points))
		for _, p := range points {
			cp := catalogPoint(name, p)
			cp.State = catalog.PointAvailable
			if _, ok := byID[cp.ID]; !ok {
				rep.Added++
			}
			if err := tx.UpsertPoint(ctx, cp); err != nil {
				return err
			}
			inVault[cp.ID] = true
			rep.Points++
		}
		for _, p := range known {
			if inVault[p.ID] || p.State != catalog.PointAvailable {
				continue
			}
			p.State = catalog.PointMissing
			if err := tx.UpsertPoint(ctx, p); err != nil {
				return err
			}
			if err := tx.AppendEvent(ctx, catalog.PointStateEvent(p, catalog.PointMissing, env.Site)); err != nil {
				return err
			}
			rep.Missing++
		}
		return nil
	})
}
