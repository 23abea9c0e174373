package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// SnapshotOptions configures Snapshot. The zero value uses the defaults.
type SnapshotOptions struct {
	Resource    string            // the point's resource (default "sqlite:" + absolute path)
	Host        string            // the point's host (default os.Hostname)
	Tags        map[string]string // the point's tags
	BusyTimeout time.Duration     // wait for the application's locks (default DefaultBusyTimeout)
	Now         func() time.Time  // clock (default time.Now)
}

func resourceFor(abs string) string { return "sqlite:" + abs }

func absPath(op, path string) (string, error) {
	if path == "" {
		return "", errs.Errorf(op, errs.Invalid, "no database path").WithHint("name the SQLite database file, e.g. sqlite:///srv/app/app.db")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", errs.E(op, errs.Invalid, fmt.Errorf("database path %q: %w", path, err))
	}
	return abs, nil
}

func hostname(h string) string {
	if h == "" {
		h, _ = os.Hostname()
	}
	return h
}

// Snapshot stores a consistent copy of the WAL-mode database at path as a sqlite-snapshot
// point and returns it. The database stays live: Rewind holds the write lock only while it
// reads the WAL to its end, then copies the pages under a read transaction (the application
// keeps writing). The point's Meta records the WAL position the copy corresponds to, so that
// frames shipped later (Stream) apply to it.
//
// Errors: errs.NotFound (no such file), errs.Invalid (not SQLite, not in WAL mode),
// errs.Unavailable (the database stayed locked, or reading it failed; retryable), errs.Conflict
// (the -wal file was deleted or replaced while copying; retry), and the vault's kinds.
func Snapshot(ctx context.Context, v Vault, path string, opts SnapshotOptions) (*vault.Point, error) {
	const op = "sqlite.Snapshot"
	abs, err := absPath(op, path)
	if err != nil {
		return nil, err
	}
	h, err := openHandle(ctx, op, abs, opts.BusyTimeout)
	if err != nil {
		return nil, err
	}
	defer h.close()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	pos, err := h.pin(ctx)
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("database %s: %w", abs, err)).WithHint("the application may hold a long write transaction; retry")
	}
	pinned := now().UTC()
	res := opts.Resource
	if res == "" {
		res = resourceFor(abs)
	}
	p, _, err := saveSnapshot(ctx, op, v, h, pos, pinned, pointInfo{resource: res, host: hostname(opts.Host), path: abs, tags: opts.Tags, now: now})
	return p, err
}

type pointInfo struct {
	resource, host, path string
	tags                 map[string]string
	now                  func() time.Time
}

// saveSnapshot copies the pinned state (h.reader must hold it) into the vault and saves the
// point; it also returns page 1 of the copy. The pages are read through SQLite inside the
// read transaction, so the copy is the pinned state whatever the application writes
// meanwhile; it checks after the copy that the -wal file is still the one it was.
func saveSnapshot(ctx context.Context, op string, v Vault, h *handle, pos position, pinned time.Time, pi pointInfo) (*vault.Point, []byte, error) {
	start := pi.now()
	pr, err := newPageReader(ctx, h, pos)
	if err != nil {
		return nil, nil, errs.E(op, errs.Unavailable, fmt.Errorf("database %s: %w", h.path, err))
	}
	defer pr.Close()
	res, err := files.BackupStream(ctx, v, pr, snapshotFile, files.BackupOptions{Now: func() time.Time { return pinned }})
	if err != nil {
		return nil, nil, err
	}
	if err := h.walReplaced(); err != nil {
		if errors.Is(err, errWALReplaced) {
			return nil, nil, errs.E(op, errs.Conflict, fmt.Errorf("database %s: %w while its pages were copied", h.path, err)).WithHint("retry the snapshot")
		}
		return nil, nil, errs.E(op, errs.Unavailable, err)
	}
	if want := uint64(pos.DBPages) * uint64(pos.PageSize); res.Summary.BytesInTree != want {
		return nil, nil, errs.Errorf(op, errs.Internal, "copied %d bytes of %s, expected %d", res.Summary.BytesInTree, h.path, want)
	}
	if err := v.Flush(ctx); err != nil {
		return nil, nil, err
	}
	p := &vault.Point{
		Kind: KindSnapshot, Time: pinned, Host: pi.host, Resource: pi.resource,
		Paths: []string{pi.path}, Tags: pi.tags, Root: res.Root,
		Summary: vault.Summary{Files: 1, Bytes: res.Summary.BytesInTree, BlobsAdded: res.Summary.NewBlobs,
			BytesAdded: res.Summary.NewBytes, Duration: pi.now().Sub(start)},
		Range: &vault.TimeRange{From: pinned, To: pinned},
		Meta:  pos.meta(nil),
	}
	if _, err := v.SavePoint(ctx, p); err != nil {
		return nil, nil, err
	}
	return p, pr.page1, nil
}
