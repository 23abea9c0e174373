package vault

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/pack"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

const (
	mergeGap      = 1 << 20  // read across gaps up to this size rather than issue another request
	maxMergedRead = 32 << 20 // but never read more than this in one request (it is streamed)
)

func packHandle(id [32]byte) backend.Handle {
	return backend.Handle{Type: backend.Pack, Name: hex.EncodeToString(id[:])}
}

// openBlob authenticates, decompresses and checks one stored blob.
func (r *Repository) openBlob(dst []byte, b *pack.Blob, sealed []byte) ([]byte, error) {
	out, _, err := r.openBlobScratch(dst, nil, b, sealed)
	return out, err
}

// openBlobScratch is openBlob with a scratch buffer for the decrypted bytes, reused across
// calls (grown as needed). An uncompressed blob is returned in the scratch buffer itself
// (inScratch true), saving a copy; it is then valid only until the next call.
func (r *Repository) openBlobScratch(dst []byte, scratch *[]byte, b *pack.Blob, sealed []byte) (out []byte, inScratch bool, err error) {
	var sdst []byte
	if scratch != nil {
		sdst = (*scratch)[:0]
	}
	stored, err := seal.Open(sdst, &r.key.Enc, pack.BlobContext(r.vault, b.Type, &b.ID), sealed)
	if err != nil {
		return nil, false, err
	}
	if scratch != nil && cap(stored) > cap(*scratch) {
		*scratch = stored[:0]
	}
	if scratch != nil && b.Compression == pack.None {
		if len(stored) != int(b.RawLength) {
			return nil, false, fmt.Errorf("stored %d bytes, index says %d", len(stored), b.RawLength)
		}
		out, inScratch = stored, true
	} else if out, err = decompress(dst, stored, b.Compression, b.RawLength); err != nil {
		return nil, false, err
	}
	if r.blobID(out) != ID(b.ID) {
		return nil, false, fmt.Errorf("content does not hash to its ID")
	}
	return out, inScratch, nil
}

func blobErr(op string, t BlobType, id ID, packID [32]byte, err error) error {
	kind := errs.KindOf(err)
	if kind == errs.Other || kind == errs.NotFound || kind == errs.Invalid {
		kind = errs.Corrupt // the index lists it: a missing pack or range is damage
	}
	if kind == errs.Unavailable || kind == errs.Canceled {
		return errs.E(op, kind, fmt.Errorf("%v blob %s in pack %s: %w", t, id.Short(), hex.EncodeToString(packID[:4]), err))
	}
	return errs.E(op, kind, fmt.Errorf("%v blob %s in pack %s: %w", t, id, hex.EncodeToString(packID[:]), err)).
		WithHint("run 'rewind check --read-data' to see what is affected")
}

// LoadBlob reads, authenticates and decompresses a blob into buf[:0] (grown if needed). It
// returns NotFound if the blob is not indexed and Corrupt if the stored bytes fail
// authentication or the pack is missing.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	const op = "vault.LoadBlob"
	loc, ok, err := r.lookup(ctx, t, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errs.Errorf(op, errs.NotFound, "%v blob %s is not in the vault's index", t, id)
	}
	var out []byte
	err = r.be.Load(ctx, packHandle(loc.Pack), int64(loc.Blob.Offset), int64(loc.Blob.Length), func(rd io.Reader) error {
		sealed := make([]byte, loc.Blob.Length)
		if _, err := io.ReadFull(rd, sealed); err != nil {
			return err
		}
		var err error
		out, err = r.openBlob(buf, &loc.Blob, sealed)
		return err
	})
	if err != nil {
		return nil, blobErr(op, t, id, loc.Pack, err)
	}
	return out, nil
}

// readRange is one ranged read of a pack covering several blobs.
type readRange struct {
	pack  [32]byte
	start uint32
	end   uint32
	blobs []pack.Blob
}

// planReads groups locations by pack and merges nearby blobs into ranged reads.
func planReads(locs []index.Location) []readRange {
	byPack := make(map[[32]byte][]pack.Blob)
	for _, l := range locs {
		byPack[l.Pack] = append(byPack[l.Pack], l.Blob)
	}
	var out []readRange
	for p, blobs := range byPack {
		sort.Slice(blobs, func(i, j int) bool { return blobs[i].Offset < blobs[j].Offset })
		var cur *readRange
		for _, b := range blobs {
			end := b.Offset + b.Length
			if cur != nil && b.Offset <= cur.end+mergeGap && end-cur.start <= maxMergedRead {
				cur.end = max(cur.end, end)
				cur.blobs = append(cur.blobs, b)
				continue
			}
			out = append(out, readRange{pack: p, start: b.Offset, end: end, blobs: []pack.Blob{b}})
			cur = &out[len(out)-1]
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].pack != out[j].pack {
			return string(out[i].pack[:]) < string(out[j].pack[:])
		}
		return out[i].start < out[j].start
	})
	return out
}

// StreamBlobs loads blobs of type t and calls fn with each, concurrently from up to workers
// goroutines. Blobs are grouped by pack and nearby ones read in one ranged request; each ID
// is delivered once even if listed several times. data is valid only during fn. Before
// reading anything it returns NotFound if an ID is not indexed; the first error (from
// storage, authentication or fn) stops the stream and is returned.
func (r *Repository) StreamBlobs(ctx context.Context, t BlobType, ids []ID, workers int, fn func(id ID, data []byte) error) error {
	const op = "vault.StreamBlobs"
	seen := make(map[ID]bool, len(ids))
	locs := make([]index.Location, 0, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		loc, ok, err := r.lookup(ctx, t, id)
		if err != nil {
			return err
		}
		if !ok {
			return errs.Errorf(op, errs.NotFound, "%v blob %s is not in the vault's index", t, id)
		}
		locs = append(locs, loc)
	}
	if workers < 1 {
		workers = 1
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, rr := range planReads(locs) {
		g.Go(func() error {
			// The range is streamed blob by blob, so a worker holds one sealed blob and its
			// plaintext, never the whole range. If the backend retries the load, fn starts
			// again from the range's start; blobs already delivered are read past, not
			// delivered twice.
			var buf, sealed, scratch []byte
			var inner error
			delivered := 0
			err := r.be.Load(gctx, packHandle(rr.pack), int64(rr.start), int64(rr.end-rr.start), func(rd io.Reader) error {
				pos := rr.start
				for i := range rr.blobs {
					b := &rr.blobs[i]
					if b.Offset > pos {
						if _, err := io.CopyN(io.Discard, rd, int64(b.Offset-pos)); err != nil {
							return err
						}
					}
					if cap(sealed) < int(b.Length) {
						sealed = make([]byte, b.Length)
					}
					sealed = sealed[:b.Length]
					if _, err := io.ReadFull(rd, sealed); err != nil {
						return err
					}
					pos = b.Offset + b.Length
					if i < delivered {
						continue
					}
					out, inScratch, err := r.openBlobScratch(buf, &scratch, b, sealed)
					if err != nil {
						inner = blobErr(op, t, ID(b.ID), rr.pack, err)
						return inner
					}
					if !inScratch {
						buf = out
					}
					if err := fn(ID(b.ID), out); err != nil {
						inner = err
						return err
					}
					delivered = i + 1
				}
				return nil
			})
			if err != nil && inner == nil {
				return blobErr(op, t, ID(rr.blobs[0].ID), rr.pack, err)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		if _, ok := err.(*errs.Error); ok {
			return err
		}
		return errs.E(op, errs.KindOf(err), err)
	}
	return nil
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, errs.Errorf("vault.LoadTree", errs.Corrupt, "tree %s: %v", id, err)
	}
	return t, nil
}
