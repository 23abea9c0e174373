package vault

import (
	"encoding/hex"
	"fmt"

	"github.com/rewind-dr/rewind/internal/errs"
)

// IDSize is the size of a content ID in bytes.
const IDSize = 32

// ID identifies a blob (keyed BLAKE3 of its plaintext) or a stored file. IDs of blobs are
// keyed by the vault's secret, so they never reveal a plaintext hash.
type ID [IDSize]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex characters, for display.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zeroes (unset).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the ID as hex (JSON uses it).
func (id ID) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(IDSize))
	hex.Encode(out, id[:])
	return out, nil
}

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID parses a 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != hex.EncodedLen(IDSize) {
		return id, errs.Errorf("vault.ParseID", errs.Invalid, "ID %q: want %d hex characters, got %d", s, hex.EncodedLen(IDSize), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, errs.Errorf("vault.ParseID", errs.Invalid, "ID %q: %v", s, err)
	}
	return id, nil
}

// BlobType says what a blob holds. It is bound into the blob's authentication, so a data
// blob cannot be passed off as a tree.
type BlobType uint8

const (
	DataBlob BlobType = 1 // file contents (a chunk)
	TreeBlob BlobType = 2 // a directory listing: an encoded Tree
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}
