package files

import (
	"context"
	"fmt"
	"io"

	"github.com/rewind-dr/rewind/internal/vault"
)

// Store is the part of a vault that the files plugin needs. *vault.Repository satisfies it
// (through a small adapter for NewChunker).
type Store interface {
	// SaveBlob stores data as a blob of type t and returns its ID and whether it was new.
	// It is safe for concurrent use, compresses and encrypts in the caller's goroutine, and
	// the caller may reuse data after it returns. Errors: errs.Unavailable (backend),
	// errs.Canceled, errs.Internal. It does not retry beyond what the vault's backend does.
	SaveBlob(ctx context.Context, t vault.BlobType, data []byte) (id vault.ID, added bool, err error)
	// LoadBlob returns the plaintext of blob id, appended to buf[:0] when it fits. Safe for
	// concurrent use. Errors: errs.NotFound (no such blob), errs.Corrupt (damaged),
	// errs.Unavailable.
	LoadBlob(ctx context.Context, t vault.BlobType, id vault.ID, buf []byte) ([]byte, error)
	// StreamBlobs loads every blob of ids (grouped by pack, with up to workers packs in
	// flight) and calls fn once per distinct ID; fn is called concurrently and data is valid
	// only during the call. It returns the first error of fn or of loading; blobs that were not
	// delivered may be fetched again with LoadBlob. Errors: those of LoadBlob and of fn.
	StreamBlobs(ctx context.Context, t vault.BlobType, ids []vault.ID, workers int, fn func(id vault.ID, data []byte) error) error
	// BlobSize returns the plaintext size of a stored blob, and false when the vault's index
	// does not know it. Safe for concurrent use; no I/O.
	BlobSize(t vault.BlobType, id vault.ID) (uint32, bool)
	// NewChunker returns a content-defined chunker over rd keyed by the vault's secret.
	NewChunker(rd io.Reader) Chunker
}

// Chunker splits a stream into chunks. Next returns the next chunk, using buf as storage
// when it is large enough (the chunk is valid until the next call), and io.EOF (with no data)
// after the last chunk. A Chunker is used by one goroutine.
type Chunker interface {
	Next(buf []byte) ([]byte, error)
}

// Warning is a problem with one path that did not stop the operation: a file that vanished
// or changed during backup, a permission error, a blob that could not be restored.
type Warning struct {
	Path string // the file system path (backup) or the path relative to the point root (restore)
	Err  error
}

func (w Warning) String() string { return fmt.Sprintf("%s: %v", w.Path, w.Err) }

// Status is a snapshot of an operation's progress.
type Status struct {
	Files      uint64 // backup: files seen; restore: files restored
	Dirs       uint64 // backup: directories seen; restore: directories restored
	Bytes      uint64 // backup: bytes read; restore: bytes written
	BytesTotal uint64 // backup: sizes of the files seen so far (an estimate); restore: bytes to write
	Current    string // the file being read or written, if any
	Errors     uint64 // warnings so far
}

// Progress receives status snapshots. Calls are serialized (never concurrent) and happen
// from the operation's goroutines, so a Progress must return quickly.
type Progress func(Status)
