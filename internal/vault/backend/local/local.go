package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

var (
	_ backend.Backend = (*Local)(nil)
	_ backend.Creator = (*Local)(nil)
)

// File and directory modes. Vault files are private to the owner: they hold encrypted data
// whose names and sizes are still worth hiding from other local users.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// tempPrefix starts the name of every file being written. List ignores such files; a crash
// in the middle of a Save leaves one behind, which is harmless.
const tempPrefix = ".tmp-"

// Local is a backend rooted at a directory. It holds no state besides the root path and is
// safe for concurrent use.
type Local struct {
	root string
}

// New returns a backend rooted at dir, which is made absolute. The directory need not exist
// yet: Create makes it, and Save creates missing directories on the way.
func New(dir string) (*Local, error) {
	if dir == "" {
		return nil, errs.Errorf("local.New", errs.Invalid, "empty directory path").
			WithHint("give the directory that holds (or will hold) the vault, e.g. /srv/backup/vault")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errs.E("local.New", errs.Invalid, fmt.Errorf("directory %q: %w", dir, err))
	}
	return &Local{root: abs}, nil
}

// Location returns the root directory.
func (l *Local) Location() string { return l.root }

// Close does nothing: a local backend holds no resources.
func (l *Local) Close() error { return nil }

// filename returns the absolute path of h, or an Invalid error.
func (l *Local) filename(op string, h backend.Handle) (string, error) {
	rel, err := backend.RelPath(h)
	if err != nil {
		return "", errs.E(op, errs.Invalid, err)
	}
	if h.Type != backend.Config && strings.HasPrefix(h.Name, tempPrefix) {
		return "", errs.Errorf(op, errs.Invalid, "%v: file names starting with %q are reserved for temporary files", h, tempPrefix)
	}
	return filepath.Join(l.root, filepath.FromSlash(rel)), nil
}

// typeDir returns the directory holding files of type t (the root for Config).
func (l *Local) typeDir(t backend.FileType) string {
	if t == backend.Config {
		return l.root
	}
	return filepath.Join(l.root, t.String())
}

// fail classifies a file system error.
func fail(op string, what string, err error) error {
	wrapped := fmt.Errorf("%s: %w", what, err)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errs.E(op, errs.NotFound, wrapped)
	case errors.Is(err, fs.ErrPermission):
		return errs.E(op, errs.Unauthorized, wrapped).
			WithHint("check that the user running Rewind may read and write the vault directory")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errs.E(op, errs.Other, wrapped).WithHint("free space on the vault's file system or raise the quota")
	case errors.Is(err, syscall.EROFS):
		return errs.E(op, errs.Other, wrapped).WithHint("the vault's file system is mounted read-only")
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ESTALE), errors.Is(err, syscall.ETIMEDOUT):
		// Network file systems report transient trouble this way.
		return errs.E(op, errs.Unavailable, wrapped)
	}
	return errs.E(op, errs.Other, wrapped)
}

func canceled(op string, ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	return nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ensureDir makes dir (and missing parents) with DirMode, fsyncing each parent in which
// a directory was created.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := ensureDir(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made concurrently
		}
		return err
	}
	return syncDir(parent)
}

// Save writes data to a temporary file beside the target, fsyncs it, renames it into place
// and fsyncs the directory. Missing directories are created. It returns Invalid for a bad
// handle and Canceled if ctx is done before the rename.
func (l *Local) Save(ctx context.Context, h backend.Handle, data []byte) error {
	const op = "local.Save"
	name, err := l.filename(op, h)
	if err != nil {
		return err
	}
	if err := canceled(op, ctx); err != nil {
		return err
	}
	dir := filepath.Dir(name)
	if err := ensureDir(dir); err != nil {
		return fail(op, "create directory for "+h.String(), err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fail(op, h.String(), err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(FileMode); err != nil {
		return fail(op, h.String(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(op, "write "+h.String(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(op, "sync "+h.String(), err)
	}
	if err := tmp.Close(); err != nil {
		return fail(op, "close "+h.String(), err)
	}
	if err := canceled(op, ctx); err != nil {
		return err
	}
	if err := os.Rename(tmpName, name); err != nil {
		return fail(op, "rename into place "+h.String(), err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return fail(op, "sync directory of "+h.String(), err)
	}
	return nil
}

// Load opens h and calls fn with a reader over the requested range. It returns NotFound if
// h does not exist, Invalid for a bad handle or a range outside the file, and fn's error as
// is.
func (l *Local) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	const op = "local.Load"
	name, err := l.filename(op, h)
	if err != nil {
		return err
	}
	if err := canceled(op, ctx); err != nil {
		return err
	}
	if offset < 0 || length < 0 {
		return errs.Errorf(op, errs.Invalid, "%v: negative range %d+%d", h, offset, length)
	}
	f, err := os.Open(name)
	if err != nil {
		return fail(op, h.String(), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(op, h.String(), err)
	}
	size := fi.Size()
	if offset > size || length > size-offset { // no sum: it could overflow
		return errs.Errorf(op, errs.Invalid, "%v: range %d+%d outside file of %d bytes", h, offset, length, size)
	}
	n := size - offset
	if length > 0 {
		n = length
	}
	return fn(&ctxReader{ctx: ctx, r: io.NewSectionReader(f, offset, n)})
}

// ctxReader stops reading once ctx is done, so a long Load can be canceled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, errs.E("local.Load", errs.Canceled, err)
	}
	return r.r.Read(p)
}

// Stat returns the size and modification time of h, NotFound if it does not exist.
func (l *Local) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	const op = "local.Stat"
	name, err := l.filename(op, h)
	if err != nil {
		return backend.FileInfo{}, err
	}
	if err := canceled(op, ctx); err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return backend.FileInfo{}, fail(op, h.String(), err)
	}
	if !fi.Mode().IsRegular() {
		return backend.FileInfo{}, errs.Errorf(op, errs.Other, "%v: %s is not a regular file", h, name)
	}
	return backend.FileInfo{Name: filepath.Base(name), Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every file of type t. A type directory that does not exist yet is an
// empty listing; any directory that exists but cannot be read is an error. Temporary files
// are skipped.
func (l *Local) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	const op = "local.List"
	if err := canceled(op, ctx); err != nil {
		return err
	}
	switch t {
	case backend.Config:
		fi, err := l.Stat(ctx, backend.Handle{Type: backend.Config})
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	case backend.Pack:
		dir := l.typeDir(t)
		subs, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fail(op, "list packs", err)
		}
		for _, sub := range subs {
			if !sub.IsDir() {
				continue // stray file, not part of the layout
			}
			if err := l.listDir(ctx, op, filepath.Join(dir, sub.Name()), false, fn); err != nil {
				return err
			}
		}
		return nil
	case backend.Key, backend.Index, backend.Point, backend.Lock:
		return l.listDir(ctx, op, l.typeDir(t), true, fn)
	}
	return errs.Errorf(op, errs.Invalid, "%v: unknown file type", t)
}

func (l *Local) listDir(ctx context.Context, op, dir string, missingOK bool, fn func(backend.FileInfo) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if missingOK && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fail(op, "list "+dir, err)
	}
	for _, e := range entries {
		if err := canceled(op, ctx); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the directory was read
		}
		if err != nil {
			return fail(op, "list "+dir, err)
		}
		if err := fn(backend.FileInfo{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes h and fsyncs its directory. It returns NotFound if h does not exist.
func (l *Local) Remove(ctx context.Context, h backend.Handle) error {
	const op = "local.Remove"
	name, err := l.filename(op, h)
	if err != nil {
		return err
	}
	if err := canceled(op, ctx); err != nil {
		return err
	}
	if err := os.Remove(name); err != nil {
		return fail(op, h.String(), err)
	}
	if err := syncDir(filepath.Dir(name)); err != nil {
		return fail(op, "sync directory of "+h.String(), err)
	}
	return nil
}

// Create makes the root directory, every type directory and the 256 pack subdirectories
// ("00" to "ff"). It fails with Exists if a config file is already there.
func (l *Local) Create(ctx context.Context) error {
	const op = "local.Create"
	if err := canceled(op, ctx); err != nil {
		return err
	}
	cfg := filepath.Join(l.root, "config")
	if _, err := os.Lstat(cfg); err == nil {
		return errs.Errorf(op, errs.Exists, "a vault already exists at %s", l.root).
			WithHint("use the existing vault, or choose an empty directory for a new one")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail(op, cfg, err)
	}
	if err := ensureDir(l.root); err != nil {
		return fail(op, "create "+l.root, err)
	}
	for _, t := range backend.Types {
		if t == backend.Config {
			continue
		}
		if err := ensureDir(l.typeDir(t)); err != nil {
			return fail(op, "create "+l.typeDir(t), err)
		}
	}
	packs := l.typeDir(backend.Pack)
	for i := 0; i < 256; i++ {
		if err := os.Mkdir(filepath.Join(packs, fmt.Sprintf("%02x", i)), DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fail(op, "create pack directory", err)
		}
	}
	if err := syncDir(packs); err != nil {
		return fail(op, "sync "+packs, err)
	}
	return nil
}
