// Package backend defines the contract every vault storage backend implements: a stateless
// store of named, immutable files grouped by type. A backend only moves bytes; it knows
// nothing of blobs, packs, indexes, encryption or catalogs (those belong to package vault).
// Implementations live in sub-packages (local, mem, s3); cross-cutting behaviour (retry,
// fault injection) are decorators in sub-packages too; backendtest is the conformance suite
// every implementation runs.
package backend

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// FileType groups files in a vault. Each type maps to a directory (local) or key prefix (S3).
type FileType uint8

const (
	Config FileType = iota + 1 // the single vault config file, name "config"
	Key                        // key files: keys/<name>
	Pack                       // pack files: packs/<first two hex chars>/<name>
	Index                      // index files: index/<name>
	Point                      // recovery point manifests: points/<name>
	Lock                       // lock files: locks/<name>
)

// Types lists every FileType, for iteration.
var Types = []FileType{Config, Key, Pack, Index, Point, Lock}

func (t FileType) String() string {
	switch t {
	case Config:
		return "config"
	case Key:
		return "keys"
	case Pack:
		return "packs"
	case Index:
		return "index"
	case Point:
		return "points"
	case Lock:
		return "locks"
	}
	return fmt.Sprintf("filetype(%d)", uint8(t))
}

// Handle names one file. For Config the Name is ignored (there is one config file).
type Handle struct {
	Type FileType
	Name string
}

func (h Handle) String() string {
	if h.Type == Config {
		return "config"
	}
	return h.Type.String() + "/" + h.Name
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time // as reported by the storage; zero if unknown
}

// Backend is the storage contract. All methods are safe for concurrent use. Errors are
// *errs.Error: Kind NotFound when a file does not exist, Invalid for a bad handle or range,
// Unavailable for transient failures (network, 5xx, timeouts) that a retry may cure,
// Canceled when ctx ends; anything else is Other. No method retries by itself (see the
// retry decorator).
type Backend interface {
	// Location returns a printable location with no credentials in it.
	Location() string

	// Save stores data under h atomically: readers see either no file or the whole file,
	// never a partial one. Saving over an existing file replaces it atomically. On the
	// local backend the data is fsynced, renamed into place and the directory fsynced before
	// Save returns; on S3 the object is complete when the PUT returns.
	Save(ctx context.Context, h Handle, data []byte) error

	// Load calls fn with a reader over length bytes of h starting at offset; length 0
	// means to the end. It returns Invalid if offset+length exceeds the file's size and
	// NotFound if h does not exist. The reader is valid only during fn; fn's error is
	// returned as is.
	Load(ctx context.Context, h Handle, offset, length int64, fn func(rd io.Reader) error) error

	// Stat returns information on h, NotFound if it does not exist.
	Stat(ctx context.Context, h Handle) (FileInfo, error)

	// List calls fn for every file of type t, in no particular order. A listing that
	// cannot be completed returns an error (never a silently shortened listing). fn's error
	// stops the listing and is returned.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error

	// Remove deletes h. Removing a file that does not exist returns NotFound.
	Remove(ctx context.Context, h Handle) error

	// Close releases resources.
	Close() error
}

// LoadAll reads a whole file (or the range) into memory.
func LoadAll(ctx context.Context, b Backend, h Handle, offset, length int64) ([]byte, error) {
	var out []byte
	err := b.Load(ctx, h, offset, length, func(rd io.Reader) error {
		var err error
		out, err = io.ReadAll(rd)
		return err
	})
	return out, err
}

// Creator is implemented by backends that can prepare a new, empty location.
type Creator interface {
	// Create prepares an empty location for a new vault; it fails with errs.Exists if a
	// vault config is already there. It is safe to call on a location that exists but
	// holds no vault. It does not retry.
	Create(ctx context.Context) error
}

// RelPath returns the slash-separated path of h inside a vault: "config", "keys/<name>",
// "packs/<first two chars>/<name>", "index/<name>", "points/<name>" or "locks/<name>".
// Directory-based backends (local) and key-based ones (S3) share this layout. It returns an
// error describing the problem for an unknown type or a name that is empty, contains a
// slash or a backslash, is "." or "..", or (for packs) is shorter than two characters.
func RelPath(h Handle) (string, error) {
	switch h.Type {
	case Config:
		return "config", nil
	case Key, Pack, Index, Point, Lock:
	default:
		return "", fmt.Errorf("%v: unknown file type", h.Type)
	}
	switch {
	case h.Name == "":
		return "", fmt.Errorf("%v: empty file name", h.Type)
	case h.Name == "." || h.Name == "..":
		return "", fmt.Errorf("%v: file name %q is not allowed", h.Type, h.Name)
	case strings.ContainsAny(h.Name, "/\\\x00"):
		return "", fmt.Errorf("%v: file name %q contains a slash, backslash or NUL", h.Type, h.Name)
	}
	if h.Type == Pack {
		if len(h.Name) < 2 {
			return "", fmt.Errorf("packs: file name %q is shorter than two characters", h.Name)
		}
		return "packs/" + h.Name[:2] + "/" + h.Name, nil
	}
	return h.Type.String() + "/" + h.Name, nil
}
