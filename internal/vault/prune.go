package vault

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/pack"
)

// DefaultMaxUnused is the share of unused bytes above which prune rewrites a pack.
const DefaultMaxUnused = 0.1

// PruneOptions control Prune.
type PruneOptions struct {
	DryRun bool // compute and report, change nothing
	// MaxUnused: packs with a larger share of unused bytes are rewritten. Zero means
	// DefaultMaxUnused; a negative value rewrites every partly used pack.
	MaxUnused float64
}

// PruneReport says what Prune did (or, with DryRun, would do).
type PruneReport struct {
	Points            int
	BlobsUsed         int
	PacksTotal        int
	PacksDeleted      int   // wholly unused packs
	PacksRepacked     int   // partly used packs rewritten
	PacksUnreferenced int   // stored packs no index listed (deleted too)
	PacksWritten      int   // new packs holding repacked blobs
	BlobsRepacked     int   // used blobs copied into new packs
	BytesRepacked     int64 // their sealed bytes
	BytesDeleted      int64 // bytes of the packs removed
	IndexFilesWritten int
	IndexFilesDeleted int
}

// Prune deletes data no point references. It takes an exclusive lock, reads every index
// file, pack listing, point and tree (any error aborts it with nothing deleted), rewrites
// partly used packs, writes a complete new index that supersedes the old one, re-validates
// the lease, then deletes the old index files and finally the obsolete packs. Every
// intermediate state is a consistent vault, so an interrupted prune is simply run again.
func (r *Repository) Prune(ctx context.Context, opts PruneOptions) (*PruneReport, error) {
	const op = "vault.Prune"
	if opts.MaxUnused == 0 {
		opts.MaxUnused = DefaultMaxUnused
	}
	if r.pendingWork() {
		return nil, errs.Errorf(op, errs.Internal, "blobs saved since the last Flush are pending; Flush before Prune")
	}
	lock, err := r.Lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))
	failClosed := func(what string, err error) error {
		return errs.E(op, errs.KindOf(err), fmt.Errorf("%s: %w; nothing was deleted", what, err)).
			WithHint("prune stops at the first read error so it never deletes data it could not see; fix the cause (or run 'rewind check') and prune again")
	}

	files, err := r.readIndexFiles(ctx)
	if err != nil {
		return nil, failClosed("reading the index", err)
	}
	superseded := supersededSet(files)
	idx := index.New()
	var packOrder [][32]byte
	packBlobs := make(map[[32]byte][]pack.Blob)
	fileIDs := make([]ID, 0, len(files))
	for id := range files {
		fileIDs = append(fileIDs, id)
	}
	sort.Slice(fileIDs, func(i, j int) bool { return fileIDs[i].String() < fileIDs[j].String() })
	for _, id := range fileIDs {
		if superseded[id] {
			continue
		}
		for _, p := range files[id].Packs {
			if _, ok := packBlobs[p.ID]; !ok {
				packOrder = append(packOrder, p.ID)
			}
			packBlobs[p.ID] = append(packBlobs[p.ID], p.Blobs...)
			idx.Add(p.ID, p.Blobs)
		}
	}
	storedInfos, err := listNames(ctx, r.be, backend.Pack)
	if err != nil {
		return nil, failClosed("listing packs", err)
	}
	stored := make(map[string]int64, len(storedInfos))
	for _, fi := range storedInfos {
		stored[fi.Name] = fi.Size
	}
	for _, pid := range packOrder {
		if _, ok := stored[hex.EncodeToString(pid[:])]; !ok {
			return nil, failClosed("checking packs", errs.Errorf(op, errs.Corrupt, "pack %x is listed by the index but missing", pid))
		}
	}

	// Every blob reachable from every point, walked with the index just read.
	r.idxMu.Lock()
	r.idx.Store(idx)
	r.idxMu.Unlock()
	points, err := r.Points(ctx)
	if err != nil {
		return nil, failClosed("reading points", err)
	}
	used := make(map[index.Key]bool)
	seen := make(map[ID]bool)
	for _, p := range points {
		err := r.walkTrees(ctx, p.Root, "/", seen, func(dir string, tid ID, t *Tree, terr error) error {
			if terr != nil {
				return fmt.Errorf("point %s, tree %s at %s: %w", p.ID.Short(), tid.Short(), dir, terr)
			}
			used[index.Key{Type: uint8(TreeBlob), ID: tid}] = true
			for _, n := range t.Nodes {
				for _, c := range n.Content {
					k := index.Key{Type: uint8(DataBlob), ID: c}
					if !idx.Has(k.Type, k.ID) {
						return errs.Errorf(op, errs.Corrupt, "point %s: data blob %s of %s is missing", p.ID.Short(), c, dir+"/"+string(n.Name))
					}
					used[k] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, failClosed("walking trees", err)
		}
	}
	rep := &PruneReport{Points: len(points), BlobsUsed: len(used), PacksTotal: len(storedInfos)}

	// Decide per pack. The first indexed copy of a used blob is kept.
	kept := make(map[index.Key]bool)
	var keepPacks []index.Pack
	var repack []index.Pack // the used blobs to copy out of each repacked pack
	deletePacks := make(map[[32]byte]bool)
	for _, pid := range packOrder {
		var total, unused int64
		var keep []pack.Blob
		for _, b := range packBlobs[pid] {
			k := index.Key{Type: b.Type, ID: b.ID}
			total += int64(b.Length)
			if used[k] && !kept[k] {
				kept[k] = true
				keep = append(keep, b)
			} else {
				unused += int64(b.Length)
			}
		}
		switch {
		case len(keep) == 0:
			deletePacks[pid] = true
			rep.PacksDeleted++
		case unused > 0 && float64(unused) > opts.MaxUnused*float64(total):
			deletePacks[pid] = true
			repack = append(repack, index.Pack{ID: pid, Blobs: keep})
			rep.PacksRepacked++
		default:
			keepPacks = append(keepPacks, index.Pack{ID: pid, Blobs: packBlobs[pid]})
		}
	}
	for _, fi := range storedInfos {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil, failClosed("listing packs", errs.Errorf(op, errs.Corrupt, "packs/%s is not a pack name", fi.Name))
		}
		if _, ok := packBlobs[id]; !ok {
			deletePacks[id] = true
			rep.PacksUnreferenced++
		}
	}
	for pid := range deletePacks {
		rep.BytesDeleted += stored[hex.EncodeToString(pid[:])]
	}
	for _, p := range repack {
		for _, b := range p.Blobs {
			rep.BlobsRepacked++
			rep.BytesRepacked += int64(b.Length)
		}
	}
	if opts.DryRun {
		return rep, nil
	}

	// Rewrite partly used packs, verifying every blob copied.
	newPacks, err := r.repack(ctx, repack)
	if err != nil {
		return nil, failClosed("repacking", err)
	}
	rep.PacksWritten = len(newPacks)
	keepPacks = append(keepPacks, newPacks...)

	// The new index: complete; only its last file supersedes the old ones, so an interrupted
	// write leaves the old index in force.
	var chunks []*index.File
	cur := &index.File{}
	for _, p := range keepPacks {
		if len(cur.Packs) > 0 && cur.Blobs()+len(p.Blobs) > index.MaxBlobsPerFile {
			chunks = append(chunks, cur)
			cur = &index.File{}
		}
		cur.Packs = append(cur.Packs, p)
	}
	chunks = append(chunks, cur)
	for _, id := range fileIDs {
		cur.Supersedes = append(cur.Supersedes, id)
	}
	newFiles := make(map[ID]bool)
	for _, f := range chunks {
		id, err := r.writeIndex(ctx, f)
		if err != nil {
			return nil, failClosed("writing the new index", err)
		}
		newFiles[id] = true
		rep.IndexFilesWritten++
	}
	fresh := index.New()
	for _, f := range chunks {
		fresh.AddFile(f)
	}
	r.idxMu.Lock()
	r.idx.Store(fresh)
	r.idxFiles = newFiles
	r.idxMu.Unlock()

	if err := r.requireLease(ctx, op, true); err != nil {
		return rep, err
	}
	for _, id := range fileIDs {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.Index, Name: id.String()}); err != nil && !errs.Is(err, errs.NotFound) {
			return rep, errs.E(op, errs.KindOf(err), fmt.Errorf("removing old index file %s: %w", id.Short(), err)).
				WithHint("the vault is consistent; run prune again to finish")
		}
		rep.IndexFilesDeleted++
	}
	for pid := range deletePacks {
		if err := r.be.Remove(ctx, packHandle(pid)); err != nil && !errs.Is(err, errs.NotFound) {
			return rep, errs.E(op, errs.KindOf(err), fmt.Errorf("removing pack %x: %w", pid[:4], err)).
				WithHint("the vault is consistent; run prune again to finish")
		}
	}
	return rep, nil
}

// repack copies the listed blobs, still sealed, into new packs (data and trees apart) and
// stores them, verifying each blob on the way.
func (r *Repository) repack(ctx context.Context, from []index.Pack) ([]index.Pack, error) {
	var out []index.Pack
	writers := map[uint8]*pack.Writer{}
	flush := func(t uint8) error {
		w := writers[t]
		if w == nil || w.Count() == 0 {
			return nil
		}
		delete(writers, t)
		data, id, blobs, err := w.Finish(&r.key.Enc, r.vault)
		if err != nil {
			return err
		}
		if _, err := pack.Parse(&r.key.Enc, r.vault, data); err != nil || pack.ID(data) != id {
			return errs.Errorf("vault.Prune", errs.Corrupt, "new pack: corruption detected before upload")
		}
		if err := r.be.Save(ctx, packHandle(id), data); err != nil {
			return err
		}
		out = append(out, index.Pack{ID: id, Blobs: blobs})
		return nil
	}
	var buf []byte
	for _, p := range from {
		var locs []index.Location
		for _, b := range p.Blobs {
			locs = append(locs, index.Location{Pack: p.ID, Blob: b})
		}
		for _, rr := range planReads(locs) {
			err := r.be.Load(ctx, packHandle(rr.pack), int64(rr.start), int64(rr.end-rr.start), func(rd io.Reader) error {
				data := make([]byte, rr.end-rr.start)
				if _, err := io.ReadFull(rd, data); err != nil {
					return err
				}
				for _, b := range rr.blobs {
					sealed := data[b.Offset-rr.start : b.Offset-rr.start+b.Length]
					out, err := r.openBlob(buf, &b, sealed)
					if err != nil {
						return fmt.Errorf("%v blob %x in pack %x: %w", BlobType(b.Type), b.ID[:4], rr.pack[:4], err)
					}
					buf = out
					w := writers[b.Type]
					if w == nil {
						w = pack.NewWriter(make([]byte, 0, r.cfg.PackSize+r.cfg.PackSize/8))
						writers[b.Type] = w
					}
					if err := w.Add(b.Type, b.ID, b.Compression, int(b.RawLength), sealed); err != nil {
						return err
					}
					if w.Size() >= r.cfg.PackSize {
						if err := flush(b.Type); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	for _, t := range []uint8{pack.DataBlob, pack.TreeBlob} {
		if err := flush(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}
