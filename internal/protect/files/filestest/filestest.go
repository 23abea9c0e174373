// Package filestest provides an in-memory fake of files.Store for tests: blobs in maps,
// fixed-size chunking, and hooks to lose or damage blobs. It authenticates and encrypts
// nothing and must never hold real backups.
package filestest

import (
	"context"
	"crypto/sha256"
	"io"
	"sync"
	"sync/atomic"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// DefaultChunkSize is the chunk size of a Store made by New.
const DefaultChunkSize = 64 << 10 // bytes

type key struct {
	t  vault.BlobType
	id vault.ID
}

// Store is a concurrency-safe in-memory files.Store.
type Store struct {
	// ChunkSize is the fixed chunk length of NewChunker (set before use).
	ChunkSize int
	// AbortStreams makes StreamBlobs stop at the first missing or damaged blob instead of
	// delivering the others first (both behaviours are allowed by files.Store).
	AbortStreams bool

	mu      sync.RWMutex
	blobs   map[key][]byte
	damaged map[key]bool

	saves     atomic.Int64
	savedData atomic.Int64
}

var _ files.Store = (*Store)(nil)

// New returns an empty Store with DefaultChunkSize.
func New() *Store {
	return &Store{ChunkSize: DefaultChunkSize, blobs: map[key][]byte{}, damaged: map[key]bool{}}
}

// SaveBlob implements files.Store. The ID is SHA-256 of the type and the data.
func (s *Store) SaveBlob(ctx context.Context, t vault.BlobType, data []byte) (vault.ID, bool, error) {
	if err := ctx.Err(); err != nil {
		return vault.ID{}, false, errs.E("filestest.SaveBlob", errs.Canceled, err)
	}
	h := sha256.New()
	h.Write([]byte{byte(t)})
	h.Write(data)
	var id vault.ID
	h.Sum(id[:0])
	s.saves.Add(1)
	if t == vault.DataBlob {
		s.savedData.Add(int64(len(data)))
	}
	k := key{t, id}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[k]; ok {
		return id, false, nil
	}
	s.blobs[k] = append([]byte(nil), data...)
	return id, true, nil
}

func (s *Store) get(t vault.BlobType, id vault.ID) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := key{t, id}
	data, ok := s.blobs[k]
	if !ok {
		return nil, errs.Errorf("filestest.LoadBlob", errs.NotFound, "%s blob %s not found", t, id.Short())
	}
	if s.damaged[k] {
		return nil, errs.Errorf("filestest.LoadBlob", errs.Corrupt, "%s blob %s failed authentication", t, id.Short())
	}
	return data, nil
}

// LoadBlob implements files.Store.
func (s *Store) LoadBlob(ctx context.Context, t vault.BlobType, id vault.ID, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, errs.E("filestest.LoadBlob", errs.Canceled, err)
	}
	data, err := s.get(t, id)
	if err != nil {
		return nil, err
	}
	return append(buf[:0], data...), nil
}

// StreamBlobs implements files.Store with workers goroutines. Missing or damaged blobs are
// skipped and the first such error returned at the end (or at once with AbortStreams).
func (s *Store) StreamBlobs(ctx context.Context, t vault.BlobType, ids []vault.ID, workers int, fn func(vault.ID, []byte) error) error {
	if workers <= 0 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := map[vault.ID]bool{}
	queue := make(chan vault.ID)
	var (
		wg       sync.WaitGroup
		emu      sync.Mutex
		firstErr error
	)
	setErr := func(err error, abort bool) {
		emu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		emu.Unlock()
		if abort {
			cancel()
		}
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range queue {
				data, err := s.get(t, id)
				if err != nil {
					setErr(err, s.AbortStreams)
					continue
				}
				buf := append([]byte(nil), data...) // valid only during fn, as in the vault
				if err := fn(id, buf); err != nil {
					setErr(err, true)
				}
				clear(buf)
			}
		}()
	}
loop:
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		select {
		case queue <- id:
		case <-ctx.Done():
			break loop
		}
	}
	close(queue)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// BlobSize implements files.Store.
func (s *Store) BlobSize(t vault.BlobType, id vault.ID) (uint32, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, ok := s.blobs[key{t, id}]
	return uint32(len(data)), ok
}

// NewChunker implements files.Store with fixed-size chunks of ChunkSize bytes.
func (s *Store) NewChunker(rd io.Reader) files.Chunker {
	size := s.ChunkSize
	if size <= 0 {
		size = DefaultChunkSize
	}
	return &chunker{rd: rd, size: size}
}

type chunker struct {
	rd   io.Reader
	size int
	done bool
}

func (c *chunker) Next(buf []byte) ([]byte, error) {
	if c.done {
		return nil, io.EOF
	}
	if cap(buf) < c.size {
		buf = make([]byte, c.size)
	}
	buf = buf[:c.size]
	n, err := io.ReadFull(c.rd, buf)
	switch {
	case err == io.EOF:
		c.done = true
		return nil, io.EOF
	case err == io.ErrUnexpectedEOF:
		c.done = true
		return buf[:n], nil
	case err != nil:
		return nil, err
	}
	return buf[:n], nil
}

// Delete removes a blob, as if it were lost.
func (s *Store) Delete(t vault.BlobType, id vault.ID) {
	s.mu.Lock()
	delete(s.blobs, key{t, id})
	s.mu.Unlock()
}

// Damage makes a blob fail to load (errs.Corrupt) while the index still knows its size.
func (s *Store) Damage(t vault.BlobType, id vault.ID) {
	s.mu.Lock()
	s.damaged[key{t, id}] = true
	s.mu.Unlock()
}

// Saves returns the number of SaveBlob calls and the data bytes passed to them.
func (s *Store) Saves() (calls, dataBytes int64) { return s.saves.Load(), s.savedData.Load() }

// Len returns the number of stored blobs of type t.
func (s *Store) Len(t vault.BlobType) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for k := range s.blobs {
		if k.t == t {
			n++
		}
	}
	return n
}
