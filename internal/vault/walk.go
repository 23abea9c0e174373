package vault

import (
	"context"
	"path"
)

// walkFunc is called for every tree reachable from a root, once per tree ID (the first path
// it is met at). err is the error loading the tree; returning nil then skips its subtree,
// returning an error stops the walk.
type walkFunc func(dir string, id ID, t *Tree, err error) error

// walkTrees visits every tree under root that is not in seen, depth first.
func (r *Repository) walkTrees(ctx context.Context, root ID, dir string, seen map[ID]bool, fn walkFunc) error {
	if seen[root] {
		return nil
	}
	seen[root] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := r.LoadTree(ctx, root)
	if err != nil {
		return fn(dir, root, nil, err)
	}
	if err := fn(dir, root, t, nil); err != nil {
		return err
	}
	for _, n := range t.Nodes {
		if n.Subtree == nil {
			continue
		}
		if err := r.walkTrees(ctx, *n.Subtree, path.Join(dir, string(n.Name)), seen, fn); err != nil {
			return err
		}
	}
	return nil
}
