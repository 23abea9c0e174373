// Package mem is an in-memory backend for fast unit tests. It is never the only test of a
// contract: the conformance suite runs it beside the local and S3 backends.
package mem

import (
	"bytes"
	"context"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

var _ backend.Backend = (*Backend)(nil)

type file struct {
	data    []byte
	modTime time.Time
}

// Backend stores files in a map. The zero value is not usable; call New.
type Backend struct {
	mu    sync.Mutex
	files map[backend.Handle]file
	// Now returns the modification time recorded on Save; defaults to time.Now.
	Now func() time.Time
}

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{files: make(map[backend.Handle]file), Now: time.Now}
}

func norm(h backend.Handle) backend.Handle {
	if h.Type == backend.Config {
		h.Name = "config"
	}
	return h
}

func (b *Backend) Location() string { return "mem:" }

func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := ctx.Err(); err != nil {
		return errs.E("mem.Save", errs.Canceled, err)
	}
	if h.Type != backend.Config && h.Name == "" {
		return errs.Errorf("mem.Save", errs.Invalid, "%v: empty name", h.Type)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files[norm(h)] = file{data: bytes.Clone(data), modTime: b.Now()}
	return nil
}

func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return errs.E("mem.Load", errs.Canceled, err)
	}
	b.mu.Lock()
	f, ok := b.files[norm(h)]
	b.mu.Unlock()
	if !ok {
		return errs.Errorf("mem.Load", errs.NotFound, "%v does not exist", h)
	}
	size := int64(len(f.data))
	if offset < 0 || length < 0 || offset > size || length > size-offset {
		return errs.Errorf("mem.Load", errs.Invalid, "%v: range %d+%d outside file of %d bytes", h, offset, length, size)
	}
	end := size
	if length > 0 {
		end = offset + length
	}
	return fn(bytes.NewReader(f.data[offset:end]))
}

func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, errs.E("mem.Stat", errs.Canceled, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[norm(h)]
	if !ok {
		return backend.FileInfo{}, errs.Errorf("mem.Stat", errs.NotFound, "%v does not exist", h)
	}
	return backend.FileInfo{Name: norm(h).Name, Size: int64(len(f.data)), ModTime: f.modTime}, nil
}

func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	b.mu.Lock()
	var infos []backend.FileInfo
	for h, f := range b.files {
		if h.Type == t {
			infos = append(infos, backend.FileInfo{Name: h.Name, Size: int64(len(f.data)), ModTime: f.modTime})
		}
	}
	b.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return errs.E("mem.List", errs.Canceled, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return errs.E("mem.Remove", errs.Canceled, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[norm(h)]; !ok {
		return errs.Errorf("mem.Remove", errs.NotFound, "%v does not exist", h)
	}
	delete(b.files, norm(h))
	return nil
}

func (b *Backend) Close() error { return nil }
