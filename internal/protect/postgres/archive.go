package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// PushOptions configures WalPush.
type PushOptions struct {
	Resource string            // required
	Host     string            // recorded in the point (default os.Hostname)
	Tags     map[string]string // recorded in the point
	Now      func() time.Time  // clock (default time.Now)
}

// storeFile stores a history or backup history file as a KindWAL point.
func storeFile(ctx context.Context, v Vault, cat *catalog, name string, data []byte, tli uint32, source, resource, host string, tags map[string]string, now time.Time) (*vault.Point, error) {
	var add added
	n, err := saveStream(ctx, v, name, bytes.NewReader(data), now, &add)
	if err != nil {
		return nil, err
	}
	root, err := saveTree(ctx, v, []*vault.Node{n}, &add)
	if err != nil {
		return nil, err
	}
	if err := v.Flush(ctx); err != nil {
		return nil, err
	}
	p := &vault.Point{Kind: KindWAL, Time: now.UTC(), Host: host, Resource: resource, Tags: tags, Root: root,
		Summary: vault.Summary{Files: 1, Bytes: uint64(len(data)), BlobsAdded: add.blobs, BytesAdded: add.bytes},
		Meta: map[string]string{MetaSystemID: cat.systemID, MetaFile: name, MetaSource: source,
			MetaTimeline: strconv.FormatUint(uint64(tli), 10), MetaSegmentSize: strconv.FormatUint(cat.segSize, 10)}}
	if _, err := v.SavePoint(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// WalPush stores the file at path, as PostgreSQL's archive_command (%p) hands it over: a
// completed WAL segment, a timeline history file or a backup history file, named by its base
// name. A segment's long page header must match its name (timeline, address, size) and its
// system identifier the resource's. Pushing a file the vault already holds with the same
// content succeeds without storing anything; with different content it is refused, so an
// archive never silently changes. The caller holds the vault's shared lock.
//
// Errors: errs.Invalid (not a WAL file name, unreadable, or its header does not match its
// name), errs.Conflict (different content under that name, or another cluster's segment),
// errs.Corrupt (the stored copy cannot be read), and the vault's errors.
func WalPush(ctx context.Context, v Vault, opts PushOptions, path string) error {
	const op = "postgres.WalPush"
	if opts.Resource == "" {
		return errs.Errorf(op, errs.Invalid, "no resource name").WithHint("name the resource with --resource")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	name := filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return errs.E(op, errs.Invalid, fmt.Errorf("read %s: %w", path, err)).WithHint("archive_command passes the file as %p")
	}
	cat, err := loadCatalog(ctx, v, op, opts.Resource)
	if err != nil {
		return err
	}
	tli, ok := parseHistoryName(name)
	if ok || isBackupHistoryName(name) {
		if !ok {
			t, _ := strconv.ParseUint(name[:8], 16, 32)
			tli = uint32(t)
		}
		if p, have := cat.files[name]; have {
			old, err := cat.readFile(ctx, v, op, name)
			if err != nil {
				return err
			}
			if bytes.Equal(old, data) {
				return nil
			}
			return errs.Errorf(op, errs.Conflict, "%s is already archived for resource %q (point %s) with different content", name, opts.Resource, p.ID.Short()).
				WithHint("two clusters or two histories are archiving into one resource; give each its own resource name")
		}
		if ok {
			if _, err := parseHistory(data); err != nil {
				return errs.E(op, errs.Invalid, fmt.Errorf("%s: not a timeline history file: %w", path, err))
			}
		}
		if cat.segSize == 0 {
			cat.segSize = DefaultSegmentSize
		}
		_, err := storeFile(ctx, v, cat, name, data, tli, "archive", opts.Resource, opts.Host, opts.Tags, opts.Now())
		return err
	}

	h, err := parseSegmentHeader(data)
	if err != nil {
		return errs.E(op, errs.Invalid, fmt.Errorf("%s: %w", path, err)).WithHint("only WAL segments, .history and .backup files can be pushed")
	}
	segSize := uint64(h.SegSize)
	tli, start, ok := parseSegmentName(name, segSize)
	switch {
	case !ok:
		return errs.Errorf(op, errs.Invalid, "%q is not a WAL segment name", name).WithHint("archive_command must pass %p, whose base name is the segment's")
	case uint64(len(data)) != segSize:
		return errs.Errorf(op, errs.Invalid, "%s is %d bytes, its header says segments are %d", path, len(data), segSize).
			WithHint("archive only completed segments")
	case h.TLI != tli || h.PageAddr != start:
		return errs.Errorf(op, errs.Invalid, "%s: its header says timeline %d at %s, its name timeline %d at %s", path, h.TLI, h.PageAddr, tli, start)
	}
	sysID := strconv.FormatUint(h.SystemID, 10)
	if err := cat.checkSystem(op, sysID, segSize); err != nil {
		return err
	}
	cat.systemID, cat.segSize = sysID, segSize
	stored, _, have, err := cat.segment(ctx, v, op, tli, start)
	if err != nil {
		return err
	}
	for _, iv := range have {
		a, b := uint64(iv.from-start), uint64(iv.to-start)
		if !bytes.Equal(stored[a:b], data[a:b]) {
			return errs.Errorf(op, errs.Conflict, "segment %s is already stored for resource %q with different content (bytes %d-%d differ)", name, opts.Resource, a, b).
				WithHint("an archive must never change: check that only one cluster archives into this resource")
		}
	}
	if len(have) == 1 && have[0].from == start && uint64(have[0].to-start) == segSize {
		return nil // already stored, identical
	}
	var add added
	now := opts.Now().UTC()
	n, err := saveStream(ctx, v, name, bytes.NewReader(data), now, &add)
	if err != nil {
		return err
	}
	root, err := saveTree(ctx, v, []*vault.Node{n}, &add)
	if err != nil {
		return err
	}
	if err := v.Flush(ctx); err != nil {
		return err
	}
	p := &vault.Point{Kind: KindWAL, Time: now, Host: opts.Host, Resource: opts.Resource, Tags: opts.Tags, Root: root,
		Range:   &vault.TimeRange{From: now, To: now},
		Summary: vault.Summary{Files: 1, Bytes: segSize, BlobsAdded: add.blobs, BytesAdded: add.bytes},
		Meta: map[string]string{MetaSystemID: sysID, MetaTimeline: strconv.FormatUint(uint64(tli), 10),
			MetaStartLSN: start.String(), MetaEndLSN: (start + LSN(segSize)).String(),
			MetaSegmentSize: strconv.FormatUint(segSize, 10), MetaSource: "archive"}}
	if cat.newest != nil {
		id := cat.newest.ID
		p.Parent = &id
	}
	_, err = v.SavePoint(ctx, p)
	return err
}

// WalFetch writes the file name (as PostgreSQL's restore_command asks for it with %f) to
// dest (%p): a timeline history or backup history file, or a WAL segment assembled from
// pushed segments and streamed WAL. A segment of which only a prefix is stored (the one
// being streamed) is written with zeros after it, which recovery reads as the end of the
// WAL. Errors: errs.NotFound (the vault does not hold it: restore_command must then exit
// non-zero, which ends recovery), errs.Invalid (a name PostgreSQL never asks for),
// errs.Corrupt, errs.Unavailable (writing dest), and the vault's errors.
func WalFetch(ctx context.Context, v Vault, resource, name, dest string) error {
	const op = "postgres.WalFetch"
	cat, err := loadCatalog(ctx, v, op, resource)
	if err != nil {
		return err
	}
	var data []byte
	if _, ok := parseHistoryName(name); ok || isBackupHistoryName(name) {
		data, err = cat.readFile(ctx, v, op, name)
		if err != nil {
			return err
		}
	} else {
		if cat.segSize == 0 {
			return errs.Errorf(op, errs.NotFound, "resource %q has no WAL in this vault", resource)
		}
		tli, start, ok := parseSegmentName(name, cat.segSize)
		if !ok {
			if filepath.Ext(name) == ".partial" {
				return errs.Errorf(op, errs.NotFound, "%s: partial segments are not kept", name)
			}
			return errs.Errorf(op, errs.Invalid, "%q is not a WAL file name", name)
		}
		buf, prefix, _, err := cat.segment(ctx, v, op, tli, start)
		if err != nil {
			return err
		}
		if prefix == 0 {
			return errs.Errorf(op, errs.NotFound, "resource %q has no WAL segment %s", resource, name)
		}
		data = buf
		clear(data[prefix:])
	}
	return writeFileAtomic(op, dest, data, 0o600)
}

// writeFileAtomic writes data to a temporary file beside dest and renames it into place.
func writeFileAtomic(op, dest string, data []byte, mode fs.FileMode) error {
	tmp := dest + ".rewind-tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		os.Remove(tmp)
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, mode)
	}
	if err != nil {
		return errs.E(op, errs.Unavailable, fmt.Errorf("write %s: %w", dest, err))
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		os.Remove(tmp)
		return errs.E(op, errs.Unavailable, fmt.Errorf("write %s: %w", dest, err))
	}
	return nil
}
