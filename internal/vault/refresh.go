package vault

import (
	"context"
	"fmt"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

// lookup finds blob (t, id), and when this Repository's index lacks it, reads the index
// files written since it was loaded (by another process or host: a continuous stream, a
// concurrent backup) and looks again. So a point listed after opening restores even when
// its data was indexed later. Only index files not loaded yet are read; when one of them
// supersedes a loaded one (a prune finished), the whole index is read again.
func (r *Repository) lookup(ctx context.Context, t BlobType, id ID) (index.Location, bool, error) {
	if loc, ok := r.blobIndex().Lookup(uint8(t), id); ok {
		return loc, true, nil
	}
	if err := r.refreshIndex(ctx); err != nil {
		return index.Location{}, false, err
	}
	loc, ok := r.blobIndex().Lookup(uint8(t), id)
	return loc, ok, nil
}

// refreshIndex adds the index files written since the index was loaded. One refresh runs at
// a time; callers that waited for it find its result.
func (r *Repository) refreshIndex(ctx context.Context) error {
	const op = "vault.refreshIndex"
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	infos, err := listNames(ctx, r.be, backend.Index)
	if err != nil {
		return errs.E(op, errs.KindOf(err), fmt.Errorf("listing index files: %w", err))
	}
	r.idxMu.Lock()
	var fresh []string
	for _, fi := range infos {
		id, err := ParseID(fi.Name)
		if err != nil {
			r.idxMu.Unlock()
			return errs.Errorf(op, errs.Corrupt, "index/%s: not a valid index file name", fi.Name)
		}
		if !r.idxFiles[id] {
			fresh = append(fresh, fi.Name)
		}
	}
	r.idxMu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	files := make(map[ID]*index.File, len(fresh))
	for _, name := range fresh {
		pt, err := r.loadSealed(ctx, backend.Handle{Type: backend.Index, Name: name}, seal.Index, index.MaxFileSize)
		if errs.Is(err, errs.NotFound) {
			continue // superseded and deleted by a prune meanwhile
		}
		if err != nil {
			return err
		}
		f, err := index.Decode(pt)
		if err != nil {
			return errs.E(op, errs.Corrupt, fmt.Errorf("index/%s: %w", name, err))
		}
		id, _ := ParseID(name)
		files[id] = f
	}
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	for _, f := range files {
		for _, s := range f.Supersedes {
			if r.idxFiles[ID(s)] {
				// A prune rewrote the index: what this Repository loaded may name packs
				// that are gone, so read it all again.
				r.idxMu.Unlock()
				idx, loaded, err := r.readIndex(ctx)
				r.idxMu.Lock()
				if err != nil {
					return err
				}
				r.idx.Store(idx)
				r.idxFiles = loaded
				return nil
			}
		}
	}
	idx := r.blobIndex()
	for id, f := range files {
		idx.AddFile(f)
		r.idxFiles[id] = true
	}
	return nil
}
