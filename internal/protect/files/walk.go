package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// checkName rejects node names that could leave the directory they are restored into.
func checkName(name []byte) error {
	switch {
	case len(name) == 0:
		return errors.New("invalid name: empty")
	case string(name) == "." || string(name) == "..":
		return fmt.Errorf("invalid name %q", name)
	case bytes.IndexByte(name, '/') >= 0:
		return fmt.Errorf("invalid name %q: contains a slash", name)
	case bytes.IndexByte(name, 0) >= 0:
		return fmt.Errorf("invalid name %q: contains a NUL byte", name)
	}
	return nil
}

// loadTree loads and decodes tree blob id.
func loadTree(ctx context.Context, store Store, op string, id vault.ID, where string) (*vault.Tree, error) {
	data, err := store.LoadBlob(ctx, vault.TreeBlob, id, nil)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("tree %s of %q: %w", id.Short(), where, err))
	}
	t, err := vault.DecodeTree(data)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("tree %s of %q: decode: %w", id.Short(), where, err)).
			WithHint("the vault is damaged; run a vault check and restore from another point")
	}
	return t, nil
}

// layoutRoot returns the tree whose entries appear at the top of a restore of point root,
// and the directory node whose contents that tree is (nil when the point's root tree holds
// several entries, or a single non-directory).
func layoutRoot(ctx context.Context, store Store, op string, root vault.ID) (*vault.Tree, *vault.Node, error) {
	t, err := loadTree(ctx, store, op, root, "/")
	if err != nil {
		return nil, nil, err
	}
	if len(t.Nodes) == 1 && t.Nodes[0].Type == vault.NodeDir {
		dir := t.Nodes[0]
		if err := checkName(dir.Name); err != nil {
			return nil, nil, errs.E(op, errs.Corrupt, err)
		}
		if dir.Subtree == nil {
			return &vault.Tree{}, dir, nil
		}
		sub, err := loadTree(ctx, store, op, *dir.Subtree, string(dir.Name))
		if err != nil {
			return nil, nil, err
		}
		return sub, dir, nil
	}
	return t, nil, nil
}

// Walk calls fn for every entry of point root, depth first, in name order, a directory before
// its contents. Paths are relative to the point root as Restore lays it out (no leading
// slash). An error of fn stops the walk and is returned. Invalid names and unreadable trees
// are errors (errs.Corrupt, or the store's kind).
func Walk(ctx context.Context, store Store, root vault.ID, fn func(path []byte, n *vault.Node) error) error {
	const op = "files.Walk"
	t, _, err := layoutRoot(ctx, store, op, root)
	if err != nil {
		return err
	}
	return walkTree(ctx, store, op, t, nil, fn)
}

func walkTree(ctx context.Context, store Store, op string, t *vault.Tree, prefix []byte, fn func([]byte, *vault.Node) error) error {
	var last []byte
	for i, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return errs.E(op, errs.Canceled, err)
		}
		p := append(append([]byte(nil), prefix...), n.Name...)
		if err := checkName(n.Name); err != nil {
			return errs.E(op, errs.Corrupt, fmt.Errorf("%q: %w", p, err))
		}
		if i > 0 && bytes.Compare(last, n.Name) >= 0 {
			return errs.Errorf(op, errs.Corrupt, "%q: tree not sorted or duplicate name", p)
		}
		last = n.Name
		if err := fn(p, n); err != nil {
			return err
		}
		if n.Type == vault.NodeDir && n.Subtree != nil {
			sub, err := loadTree(ctx, store, op, *n.Subtree, string(p))
			if err != nil {
				return err
			}
			if err := walkTree(ctx, store, op, sub, append(p, '/'), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Find returns the node at path (relative to the point root as Restore lays it out; a
// leading "/" is allowed). The empty path or "/" returns the root: the single directory of the
// point, or a synthetic directory node holding the root tree. errs.NotFound when no such
// entry exists.
func Find(ctx context.Context, store Store, root vault.ID, path string) (*vault.Node, error) {
	const op = "files.Find"
	t, dir, err := layoutRoot(ctx, store, op, root)
	if err != nil {
		return nil, err
	}
	segs := splitPath(path)
	if len(segs) == 0 {
		if dir != nil {
			return dir, nil
		}
		id := root
		return &vault.Node{Name: []byte("/"), Type: vault.NodeDir, Mode: 0o755, Subtree: &id}, nil
	}
	for i, seg := range segs {
		if seg == "." || seg == ".." {
			return nil, errs.Errorf(op, errs.Invalid, "path %q: %q is not allowed", path, seg).WithHint("give a path without . or .. parts")
		}
		n := findNode(t, seg)
		if n == nil {
			return nil, errs.Errorf(op, errs.NotFound, "path %q: %q not found", path, strings.Join(segs[:i+1], "/")).
				WithHint("list the point to see which paths it holds")
		}
		if i == len(segs)-1 {
			return n, nil
		}
		if n.Type != vault.NodeDir {
			return nil, errs.Errorf(op, errs.NotFound, "path %q: %q is a %s, not a directory", path, strings.Join(segs[:i+1], "/"), n.Type)
		}
		if n.Subtree == nil {
			t = &vault.Tree{}
			continue
		}
		if t, err = loadTree(ctx, store, op, *n.Subtree, strings.Join(segs[:i+1], "/")); err != nil {
			return nil, err
		}
	}
	return nil, errs.Errorf(op, errs.Internal, "unreachable")
}
