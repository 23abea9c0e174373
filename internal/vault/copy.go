package vault

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// CopyProgress is reported after each blob and each point copied.
type CopyProgress struct {
	Points      int // points to consider
	PointsDone  int
	BlobsCopied uint64 // blobs dst did not have
	BytesCopied uint64 // their plaintext bytes
	Current     ID     // the source point being copied
}

// CopiedPoint pairs a source point with its copy.
type CopiedPoint struct {
	Src, Dst ID
	Skipped  bool // dst already had it
}

// CopyReport says what Copy did.
type CopyReport struct {
	Points        []CopiedPoint
	PointsCopied  int
	PointsSkipped int
	BlobsCopied   uint64
	BytesCopied   uint64
}

// MetaCopiedFrom is the point meta key recording the source point of a copy.
const MetaCopiedFrom = "copied_from"

func pointKey(p *Point) string {
	return strings.Join([]string{p.Kind, p.Resource, p.Host, p.Time.UTC().Format(time.RFC3339Nano), strings.Join(p.Paths, "\x00")}, "\x01")
}

// Copy copies points from src into dst, another vault with its own keys. Blob IDs are keyed
// per vault, so every blob dst lacks is loaded from src, re-identified and sealed under dst's
// keys, and trees are rewritten to reference the new IDs. Points dst already has (same kind,
// resource, host, time and paths, or copied from the same source point) are skipped. Copy
// takes a shared lock on each vault; dst's points are written only after their data is
// flushed.
func Copy(ctx context.Context, src, dst *Repository, points []*Point, progress func(CopyProgress)) (*CopyReport, error) {
	return copyPoints(ctx, src, dst, points, progress, true)
}

// CopyFromReadOnly is Copy without a lock in src, for a source this process may only read
// (credentials that cannot write, or a vault another site owns): nothing is written to src.
// A prune of src running meanwhile can make a read fail (errs.NotFound), never succeed
// wrongly: every blob read is authenticated, and dst's points are written only after all
// their data was.
func CopyFromReadOnly(ctx context.Context, src, dst *Repository, points []*Point, progress func(CopyProgress)) (*CopyReport, error) {
	return copyPoints(ctx, src, dst, points, progress, false)
}

func copyPoints(ctx context.Context, src, dst *Repository, points []*Point, progress func(CopyProgress), lockSrc bool) (*CopyReport, error) {
	const op = "vault.Copy"
	if src.vault == dst.vault {
		return nil, errs.Errorf(op, errs.Invalid, "source and destination are the same vault (%s)", src.ID()[:8])
	}
	if lockSrc {
		sl, err := src.Lock(ctx, false)
		if err != nil {
			return nil, err
		}
		defer sl.Unlock(context.WithoutCancel(ctx))
	}
	dl, err := dst.Lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer dl.Unlock(context.WithoutCancel(ctx))

	existing, err := dst.Points(ctx)
	if err != nil {
		return nil, err
	}
	have := make(map[string]ID)
	for _, p := range existing {
		have[pointKey(p)] = p.ID
		if from, ok := p.Meta[MetaCopiedFrom]; ok {
			have["from:"+from] = p.ID
		}
	}
	c := &copier{src: src, dst: dst, data: make(map[ID]ID), trees: make(map[ID]ID), progress: progress}
	c.prog.Points = len(points)
	rep := &CopyReport{}
	mapped := make(map[ID]ID)
	for _, p := range points {
		c.prog.Current = p.ID
		if id, ok := have["from:"+p.ID.String()]; ok {
			mapped[p.ID] = id
		} else if id, ok := have[pointKey(p)]; ok {
			mapped[p.ID] = id
		}
		if id, ok := mapped[p.ID]; ok {
			rep.Points = append(rep.Points, CopiedPoint{Src: p.ID, Dst: id, Skipped: true})
			rep.PointsSkipped++
			c.prog.PointsDone++
			c.report()
			continue
		}
		root, err := c.tree(ctx, p.Root)
		if err != nil {
			return rep, errs.E(op, errs.KindOf(err), fmt.Errorf("point %s: %w", p.ID.Short(), err))
		}
		if err := dst.Flush(ctx); err != nil {
			return rep, err
		}
		q := *p
		q.ID = ID{}
		q.Root = root
		q.Parent = nil
		if p.Parent != nil {
			if id, ok := mapped[*p.Parent]; ok {
				q.Parent = &id
			}
		}
		q.Tags = maps.Clone(p.Tags)
		q.Meta = maps.Clone(p.Meta)
		if q.Meta == nil {
			q.Meta = map[string]string{}
		}
		q.Meta[MetaCopiedFrom] = p.ID.String()
		id, err := dst.SavePoint(ctx, &q)
		if err != nil {
			return rep, err
		}
		mapped[p.ID] = id
		have["from:"+p.ID.String()] = id
		rep.Points = append(rep.Points, CopiedPoint{Src: p.ID, Dst: id})
		rep.PointsCopied++
		c.prog.PointsDone++
		c.report()
	}
	rep.BlobsCopied, rep.BytesCopied = c.prog.BlobsCopied, c.prog.BytesCopied
	return rep, nil
}

type copier struct {
	src, dst *Repository
	mu       sync.Mutex
	data     map[ID]ID // source data blob -> destination ID
	trees    map[ID]ID
	prog     CopyProgress
	progress func(CopyProgress)
}

func (c *copier) report() {
	if c.progress != nil {
		c.progress(c.prog)
	}
}

// tree copies the tree src id and everything under it, returning its ID in dst.
func (c *copier) tree(ctx context.Context, id ID) (ID, error) {
	if out, ok := c.trees[id]; ok {
		return out, nil
	}
	t, err := c.src.LoadTree(ctx, id)
	if err != nil {
		return ID{}, err
	}
	var need []ID
	for _, n := range t.Nodes {
		for _, b := range n.Content {
			if _, ok := c.data[b]; !ok {
				need = append(need, b)
			}
		}
	}
	if len(need) > 0 {
		err := c.src.StreamBlobs(ctx, DataBlob, need, 4, func(sid ID, data []byte) error {
			did, added, err := c.dst.SaveBlob(ctx, DataBlob, data)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.data[sid] = did
			if added {
				c.prog.BlobsCopied++
				c.prog.BytesCopied += uint64(len(data))
			}
			p := c.prog
			c.mu.Unlock()
			if added && c.progress != nil {
				c.mu.Lock()
				c.progress(p)
				c.mu.Unlock()
			}
			return nil
		})
		if err != nil {
			return ID{}, err
		}
	}
	out := &Tree{Nodes: make([]*Node, len(t.Nodes))}
	for i, n := range t.Nodes {
		m := *n
		if len(n.Content) > 0 {
			m.Content = make([]ID, len(n.Content))
			for j, b := range n.Content {
				m.Content[j] = c.data[b]
			}
		}
		if n.Subtree != nil {
			sub, err := c.tree(ctx, *n.Subtree)
			if err != nil {
				return ID{}, err
			}
			m.Subtree = &sub
		}
		out.Nodes[i] = &m
	}
	did, err := c.dst.SaveTree(ctx, out)
	if err != nil {
		return ID{}, err
	}
	c.trees[id] = did
	return did, nil
}
