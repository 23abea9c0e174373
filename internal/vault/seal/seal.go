package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/zeebo/blake3"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Layout of a sealed object (docs/FORMAT.md, "Sealed envelope"):
//
//	magic "RWSE" (4) | version (1) | type (1) | salt (32) | nonce (12) | ciphertext | tag (16)
const (
	Magic      = "RWSE"
	Version    = 1
	SaltSize   = 32
	NonceSize  = 12
	TagSize    = 16
	HeaderSize = len(Magic) + 1 + 1 + SaltSize + NonceSize // 50
	// Overhead is the number of bytes a sealed object adds to its plaintext.
	Overhead = HeaderSize + TagSize // 66
	// KeySize is the size of an encryption key.
	KeySize = 32
	// MaxNameSize caps the name bound into the associated data.
	MaxNameSize = 1024
)

// Type says what a sealed object is. It is stored in the envelope and bound into the
// associated data.
type Type uint8

const (
	Config     Type = 1 // the vault config
	Key        Type = 2 // master key material inside a key file (sealed with a password-derived key)
	Index      Type = 3 // an index file
	Point      Type = 4 // a recovery point manifest
	Lock       Type = 5 // a lock file
	PackHeader Type = 6 // the header at the end of a pack
	DataBlob   Type = 7 // a data blob inside a pack
	TreeBlob   Type = 8 // a tree blob inside a pack
)

func (t Type) String() string {
	switch t {
	case Config:
		return "config"
	case Key:
		return "key"
	case Index:
		return "index"
	case Point:
		return "point"
	case Lock:
		return "lock"
	case PackHeader:
		return "pack header"
	case DataBlob:
		return "data blob"
	case TreeBlob:
		return "tree blob"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func (t Type) valid() bool { return t >= Config && t <= TreeBlob }

// Context is what a sealed object is bound to. Opening with a different context fails
// authentication.
type Context struct {
	Type  Type
	Vault [32]byte // the vault ID; all zero for objects read before the vault ID is known (config, key)
	Name  []byte   // the object's name: file name, blob ID, or empty
}

// aad builds the associated data:
//
//	magic | version | type | vault (32) | uint32 LE len(name) | name
func (c Context) aad(dst []byte) []byte {
	dst = append(dst, Magic...)
	dst = append(dst, Version, byte(c.Type))
	dst = append(dst, c.Vault[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(c.Name)))
	return append(dst, c.Name...)
}

// objectKey derives the per-object key: BLAKE3 keyed with the encryption key over the domain
// string "rewind seal v1 object key" followed by the salt.
func objectKey(key *[KeySize]byte, salt []byte) (cipher.AEAD, error) {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		return nil, err
	}
	_, _ = h.WriteString("rewind seal v1 object key")
	_, _ = h.Write(salt)
	var k [KeySize]byte
	h.Sum(k[:0])
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal appends the sealed form of plaintext, bound to c, to dst and returns the result. It is
// safe for concurrent use.
func Seal(dst []byte, key *[KeySize]byte, c Context, plaintext []byte) ([]byte, error) {
	const op = "seal.Seal"
	if !c.Type.valid() {
		return nil, errs.Errorf(op, errs.Internal, "invalid object type %d", c.Type)
	}
	if len(c.Name) > MaxNameSize {
		return nil, errs.Errorf(op, errs.Internal, "name of %d bytes exceeds %d", len(c.Name), MaxNameSize)
	}
	var rnd [SaltSize + NonceSize]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, errs.E(op, errs.Internal, fmt.Errorf("random salt: %w", err))
	}
	aead, err := objectKey(key, rnd[:SaltSize])
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	var aadBuf [128]byte
	aad := c.aad(aadBuf[:0])
	need := len(dst) + Overhead + len(plaintext)
	if cap(dst) < need {
		nd := make([]byte, len(dst), need)
		copy(nd, dst)
		dst = nd
	}
	dst = append(dst, Magic...)
	dst = append(dst, Version, byte(c.Type))
	dst = append(dst, rnd[:]...)
	return aead.Seal(dst, rnd[SaltSize:], plaintext, aad), nil
}

// Open authenticates and decrypts sealed, which must be bound to c, appending the plaintext
// to dst. Any failure is an *errs.Error of kind Corrupt that says what is wrong (too short,
// bad magic, unknown version, wrong type, authentication failed); no plaintext is returned
// then. It is safe for concurrent use.
func Open(dst []byte, key *[KeySize]byte, c Context, sealed []byte) ([]byte, error) {
	const op = "seal.Open"
	if err := CheckHeader(sealed, c.Type); err != nil {
		return nil, err
	}
	if len(c.Name) > MaxNameSize {
		return nil, errs.Errorf(op, errs.Internal, "name of %d bytes exceeds %d", len(c.Name), MaxNameSize)
	}
	salt := sealed[6 : 6+SaltSize]
	nonce := sealed[6+SaltSize : HeaderSize]
	aead, err := objectKey(key, salt)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	var aadBuf [128]byte
	out, err := aead.Open(dst, nonce, sealed[HeaderSize:], c.aad(aadBuf[:0]))
	if err != nil {
		return nil, errs.Errorf(op, errs.Corrupt, "%v failed authentication (damaged, swapped, renamed, or sealed with another key)", c.Type)
	}
	return out, nil
}

// CheckHeader validates the unauthenticated envelope header of sealed (length, magic,
// version, type) without decrypting it.
func CheckHeader(sealed []byte, want Type) error {
	const op = "seal.Open"
	if len(sealed) < Overhead {
		return errs.Errorf(op, errs.Corrupt, "%v: sealed object of %d bytes is shorter than the %d-byte envelope (truncated?)", want, len(sealed), Overhead)
	}
	if string(sealed[:4]) != Magic {
		return errs.Errorf(op, errs.Corrupt, "%v: bad magic %q, want %q (not a sealed object)", want, sealed[:4], Magic)
	}
	if sealed[4] != Version {
		return errs.Errorf(op, errs.Corrupt, "%v: envelope version %d is not supported (this build reads version %d)", want, sealed[4], Version).
			WithHint("upgrade rewind if the vault was written by a newer version")
	}
	if Type(sealed[5]) != want {
		return errs.Errorf(op, errs.Corrupt, "sealed object is a %v, expected a %v", Type(sealed[5]), want)
	}
	return nil
}

// PlaintextSize returns the plaintext size of a sealed object of n bytes, or -1 if n is too
// small to be one.
func PlaintextSize(n int) int {
	if n < Overhead {
		return -1
	}
	return n - Overhead
}
