package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Point is the redis-rdb point to restore (zero: the newest of the resource).
	Point vault.ID
	// Overwrite replaces an existing target file.
	Overwrite bool
}

// Restore writes the RDB of a redis-rdb point of resource into the file target (for example
// /var/lib/redis/dump.rdb, with Redis stopped): into a temporary file beside it, verified
// (header and CRC-64 trailer, and the checksum recorded in the point), synced, then renamed.
// It returns the point restored.
//
// Errors: errs.Invalid (no target), errs.NotFound (no such point), errs.Exists (target exists
// and Overwrite is false), errs.Corrupt (the stored RDB fails verification; target is left
// untouched), errs.Unavailable (writing failed), and the vault's kinds.
func Restore(ctx context.Context, v Vault, resource, target string, opts RestoreOptions) (*vault.Point, error) {
	const op = "redis.Restore"
	if target == "" {
		return nil, errs.Errorf(op, errs.Invalid, "no target file").WithHint("give the path of the dump file to write, e.g. /var/lib/redis/dump.rdb")
	}
	if !opts.Overwrite {
		if _, err := os.Lstat(target); err == nil {
			return nil, errs.Errorf(op, errs.Exists, "%s already exists", target).WithHint("choose another target or allow overwriting it")
		}
	}
	pts, err := v.Points(ctx)
	if err != nil {
		return nil, err
	}
	var p *vault.Point
	for _, q := range pts {
		if q.Kind != KindRDB {
			continue
		}
		if opts.Point.IsZero() && q.Resource == resource || q.ID == opts.Point {
			p = q
		}
	}
	if p == nil {
		return nil, errs.Errorf(op, errs.NotFound, "no Redis RDB point of resource %q", resource).WithHint("list points to check the resource name")
	}
	n, err := files.Find(ctx, v, p.Root, RDBFile)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".rewind-restore-*")
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("target directory: %w", err))
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var ver Verifier
	var buf []byte
	for _, id := range n.Content {
		b, err := v.LoadBlob(ctx, vault.DataBlob, id, buf)
		if err != nil {
			return nil, err
		}
		ver.Write(b)
		if _, err := tmp.Write(b); err != nil {
			return nil, errs.E(op, errs.Unavailable, err)
		}
		buf = b
	}
	info, err := ver.Finish()
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("point %s: %w", p.ID.Short(), err))
	}
	if want := p.Meta[MetaChecksum]; want != "" && want != fmt.Sprintf("%016x", info.Checksum) {
		return nil, errs.Errorf(op, errs.Corrupt, "point %s: RDB checksum %016x, the point recorded %s", p.ID.Short(), info.Checksum, want)
	}
	if want := p.Meta[MetaRDBVersion]; want != "" && want != strconv.Itoa(info.Version) {
		return nil, errs.Errorf(op, errs.Corrupt, "point %s: RDB version %d, the point recorded %s", p.ID.Short(), info.Version, want)
	}
	if err := tmp.Sync(); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	if err := tmp.Chmod(0o640); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	if opts.Overwrite {
		err = os.Rename(tmp.Name(), target)
	} else {
		err = os.Link(tmp.Name(), target)
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
	return p, nil
}
