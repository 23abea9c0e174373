package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// At is the time to restore to (nil: the newest restorable state). The result holds every
	// transaction Rewind saw committed at or before At.
	At *time.Time
	// Overwrite replaces an existing target (and removes its -wal and -shm files).
	Overwrite bool
}

// RestoreResult describes a restore.
type RestoreResult struct {
	Snapshot vault.ID  // the snapshot the restore started from
	Points   int       // sqlite-wal points read
	Commits  int       // transactions applied on top of the snapshot
	State    time.Time // when Rewind saw the last applied transaction (or pinned the snapshot)
	Pages    uint32    // size of the restored database in pages
	PageSize uint32
}

// chain is a snapshot and the sqlite-wal points that follow it, in order, with the spans of
// time it can restore.
type chain struct {
	snap  *vault.Point
	wal   []*vault.Point
	spans []vault.TimeRange
}

func (c *chain) end() time.Time { return c.spans[len(c.spans)-1].To }

func (c *chain) covers(t time.Time) bool {
	for _, s := range c.spans {
		if !t.Before(s.From) && !t.After(s.To) {
			return true
		}
	}
	return false
}

// chains loads the resource's chains, oldest snapshot first. Following the parent links, a
// point with several children continues with the oldest (two writers of one resource fork
// a chain; the other branch is ignored).
func chains(ctx context.Context, v Vault, resource string) ([]*chain, error) {
	pts, err := v.Points(ctx)
	if err != nil {
		return nil, err
	}
	children := map[vault.ID][]*vault.Point{}
	var out []*chain
	for _, p := range pts {
		if p.Resource != resource {
			continue
		}
		switch p.Kind {
		case KindSnapshot:
			out = append(out, &chain{snap: p})
		case KindWAL:
			if p.Parent != nil && p.Range != nil {
				children[*p.Parent] = append(children[*p.Parent], p)
			}
		}
	}
	for _, c := range out {
		cur := vault.TimeRange{From: c.snap.Time, To: c.snap.Time}
		at := c.snap.ID
		for {
			kids := children[at]
			if len(kids) == 0 {
				break
			}
			sortPoints(kids)
			q := kids[0]
			if q.Range.From.After(cur.To) {
				c.spans = append(c.spans, cur)
				cur = *q.Range
			} else if q.Range.To.After(cur.To) {
				cur.To = q.Range.To
			}
			c.wal = append(c.wal, q)
			at = q.ID
		}
		c.spans = append(c.spans, cur)
	}
	return out, nil
}

// Range returns the spans of time the resource can be restored to, oldest first; touching
// or overlapping spans are merged. A gap means Rewind was not following the database then
// (protection stopped, or the WAL was reset in a way that could not be followed).
//
// Errors: errs.NotFound (no snapshot of the resource) and the vault's kinds.
func Range(ctx context.Context, v Vault, resource string) ([]vault.TimeRange, error) {
	const op = "sqlite.Range"
	cs, err := chains(ctx, v, resource)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, errs.Errorf(op, errs.NotFound, "no SQLite snapshot of resource %q", resource).
			WithHint("take one with 'rewind backup' or start 'rewind protect'")
	}
	return mergeSpans(cs), nil
}

func mergeSpans(cs []*chain) []vault.TimeRange {
	var all []vault.TimeRange
	for _, c := range cs {
		all = append(all, c.spans...)
	}
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].From.Before(all[j-1].From); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	var out []vault.TimeRange
	for _, s := range all {
		if n := len(out); n > 0 && !s.From.After(out[n-1].To) {
			if s.To.After(out[n-1].To) {
				out[n-1].To = s.To
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

func describeSpans(spans []vault.TimeRange) string {
	parts := make([]string, len(spans))
	for i, s := range spans {
		parts[i] = s.From.Format(time.RFC3339Nano) + " .. " + s.To.Format(time.RFC3339Nano)
	}
	return strings.Join(parts, ", ")
}

// Restore writes the database of resource as of opts.At into the file target: the newest
// snapshot that can reach At, then the frames of every transaction up to At, written to a
// temporary file beside target, synced, checked with PRAGMA integrity_check, and renamed to
// target. It refuses an existing target (or a target-wal file, which SQLite would apply to
// the restored file) unless opts.Overwrite.
//
// Errors: errs.NotFound (no snapshot of the resource), errs.Invalid (At outside the
// restorable range, which the message names), errs.Exists (target exists), errs.Corrupt
// (stored data fails verification or the result fails integrity_check), errs.Unavailable
// (writing target failed), and the vault's kinds.
func Restore(ctx context.Context, v Vault, resource, target string, opts RestoreOptions) (*RestoreResult, error) {
	const op = "sqlite.Restore"
	if target == "" {
		return nil, errs.Errorf(op, errs.Invalid, "no target file").WithHint("give --target, the path of the database file to create")
	}
	target, err := filepath.Abs(target)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	if !opts.Overwrite {
		for _, p := range []string{target, target + "-wal"} {
			if _, err := os.Lstat(p); err == nil {
				return nil, errs.Errorf(op, errs.Exists, "%s already exists", p).WithHint("choose another target or allow overwriting it")
			}
		}
	}
	cs, err := chains(ctx, v, resource)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, errs.Errorf(op, errs.NotFound, "no SQLite snapshot of resource %q", resource).
			WithHint("list points to check the resource name")
	}
	var pick *chain
	var at time.Time
	if opts.At == nil {
		for _, c := range cs {
			if pick == nil || !c.end().Before(pick.end()) {
				pick = c
			}
		}
		at = pick.end()
	} else {
		at = opts.At.UTC()
		for _, c := range cs {
			if c.covers(at) && (pick == nil || !c.snap.Time.Before(pick.snap.Time)) {
				pick = c
			}
		}
		if pick == nil {
			return nil, errs.Errorf(op, errs.Invalid, "%s is outside the restorable range of %q: %s",
				at.Format(time.RFC3339Nano), resource, describeSpans(mergeSpans(cs))).
				WithHint("choose a time inside one of these spans")
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".rewind-restore-*")
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("target directory: %w", err))
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	res, err := apply(ctx, op, v, pick, at, tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = errs.E(op, errs.Unavailable, cerr)
	}
	if err != nil {
		return nil, err
	}
	if err := integrityCheck(ctx, tmpName, res.Pages); err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("restored database (snapshot %s at %s): %w", pick.snap.ID.Short(), at.Format(time.RFC3339Nano), err))
	}
	if opts.Overwrite {
		for _, p := range []string{target + "-wal", target + "-shm"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, errs.E(op, errs.Unavailable, err)
			}
		}
		err = os.Rename(tmpName, target)
	} else {
		err = os.Link(tmpName, target)
	}
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errs.Errorf(op, errs.Exists, "%s already exists", target)
		}
		return nil, errs.E(op, errs.Unavailable, err)
	}
	if d, err := os.Open(filepath.Dir(target)); err == nil {
		d.Sync()
		d.Close()
	}
	return res, nil
}

// loadFile returns the content of the single file name in point p's tree.
func loadFile(ctx context.Context, v Vault, p *vault.Point, name string, fn func([]byte) error) error {
	n, err := files.Find(ctx, v, p.Root, name)
	if err != nil {
		return err
	}
	if n.Type != vault.NodeFile {
		return errs.Errorf("sqlite.Restore", errs.Corrupt, "point %s: %q is a %s, not a file", p.ID.Short(), name, n.Type)
	}
	var buf []byte
	for _, id := range n.Content {
		b, err := v.LoadBlob(ctx, vault.DataBlob, id, buf)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
		buf = b
	}
	return nil
}

// apply writes the chain's snapshot into f and applies its transactions seen up to at.
func apply(ctx context.Context, op string, v Vault, c *chain, at time.Time, f *os.File) (*RestoreResult, error) {
	pos, err := positionFromMeta(c.snap.Meta)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("point %s: %w", c.snap.ID.Short(), err))
	}
	res := &RestoreResult{Snapshot: c.snap.ID, State: c.snap.Time, PageSize: pos.PageSize}
	var off int64
	err = loadFile(ctx, v, c.snap, snapshotFile, func(b []byte) error {
		if _, err := f.WriteAt(b, off); err != nil {
			return errs.E(op, errs.Unavailable, err)
		}
		off += int64(len(b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if want := int64(pos.DBPages) * int64(pos.PageSize); off != want {
		return nil, errs.Errorf(op, errs.Corrupt, "snapshot %s holds %d bytes, its meta says %d pages of %d", c.snap.ID.Short(), off, pos.DBPages, pos.PageSize)
	}
	pages := pos.DBPages
	ps := int64(pos.PageSize)
	for _, p := range c.wal {
		if p.Range.From.After(at) {
			break
		}
		var data []byte
		if err := loadFile(ctx, v, p, segmentFile, func(b []byte) error { data = append(data, b...); return nil }); err != nil {
			return nil, err
		}
		seg, err := decodeSegment(data)
		if err != nil {
			return nil, errs.E(op, errs.Corrupt, fmt.Errorf("point %s: %w", p.ID.Short(), err))
		}
		if err := continues(pos, seg.Start); err != nil {
			return nil, errs.E(op, errs.Corrupt, fmt.Errorf("point %s does not continue the chain of snapshot %s: %w", p.ID.Short(), c.snap.ID.Short(), err))
		}
		res.Points++
		pos = seg.Start
		fsz := int(walFrameHeaderSize + pos.PageSize)
		for _, cm := range seg.Commits {
			if cm.Time.After(at) {
				break
			}
			for i := 0; i < len(cm.Frames); i += fsz {
				fr := cm.Frames[i : i+fsz]
				pgno := binary.BigEndian.Uint32(fr)
				if _, err := f.WriteAt(fr[walFrameHeaderSize:], int64(pgno-1)*ps); err != nil {
					return nil, errs.E(op, errs.Unavailable, err)
				}
			}
			pages = cm.Pages
			if err := f.Truncate(int64(pages) * ps); err != nil {
				return nil, errs.E(op, errs.Unavailable, err)
			}
			pos.Frame += cm.N
			pos.Sum = frameSum(cm.Frames[len(cm.Frames)-fsz:])
			res.Commits++
			res.State = cm.Time
		}
	}
	if err := f.Sync(); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	res.Pages = pages
	return res, nil
}

func frameSum(fr []byte) [2]uint32 {
	return [2]uint32{binary.BigEndian.Uint32(fr[16:]), binary.BigEndian.Uint32(fr[20:])}
}

// continues checks that a segment starting at next follows position prev: the same
// generation (same salts) at the same frame and checksum, or the start of another
// generation. The checkpoint sequence numbers are not compared: SQLite writes each
// connection's own count into the header, so a restart by a new process may repeat or lower
// it. That a restart lost no frame is the streamer's to prove before it writes the segment.
func continues(prev, next position) error {
	if next.PageSize != prev.PageSize {
		return fmt.Errorf("page size %d after %d", next.PageSize, prev.PageSize)
	}
	if prev.HasHeader && prev.Salt1 == next.Salt1 && prev.Salt2 == next.Salt2 {
		if prev.Ckpt != next.Ckpt || prev.BigEndian != next.BigEndian {
			return fmt.Errorf("WAL salts %08x %08x repeat with another header", next.Salt1, next.Salt2)
		}
		if next.Frame != prev.Frame || next.Sum != prev.Sum {
			return fmt.Errorf("starts after frame %d, the chain is at frame %d", next.Frame, prev.Frame)
		}
		return nil
	}
	if next.Frame != 0 {
		return fmt.Errorf("a new WAL generation starts at frame %d", next.Frame)
	}
	return nil
}

// integrityCheck opens the file read-only and runs PRAGMA integrity_check.
func integrityCheck(ctx context.Context, path string, pages uint32) error {
	db, err := sql.Open("sqlite", dsn(path, "mode=ro&immutable=1"))
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("integrity_check: %s", strings.Join(msgs, "; "))
	}
	var n uint32
	if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
		return err
	}
	if n != pages {
		return fmt.Errorf("page_count %d, expected %d", n, pages)
	}
	return nil
}
