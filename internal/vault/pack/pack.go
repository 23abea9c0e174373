package pack

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

// Layout (docs/FORMAT.md, "Pack files"):
//
//	sealed blob 0 | ... | sealed blob n-1 | sealed header | uint32 LE len(sealed header) | "RWPK"
//
// The header plaintext is
//
//	version (1) | uint32 LE count | count entries of EntrySize bytes:
//	type (1) | compression (1) | id (32) | uint32 LE offset | uint32 LE length | uint32 LE raw length
const (
	TrailerMagic   = "RWPK"
	TrailerSize    = 8 // uint32 header length + magic
	HeaderVersion  = 1
	EntrySize      = 1 + 1 + 32 + 4 + 4 + 4 // 46
	headerFixed    = 1 + 4
	MaxHeaderSize  = 16 << 20              // sealed header cap (about 364,000 blobs)
	MaxBlobSize    = 512 << 20             // plaintext cap of one blob
	MaxPackSize    = 1<<32 - 1             // offsets are uint32
	MinSealedBlob  = uint32(seal.Overhead) // an empty blob sealed
	maxHeaderCount = MaxHeaderSize / EntrySize
)

// Blob types, as stored in the header. They equal vault.DataBlob and vault.TreeBlob.
const (
	DataBlob uint8 = 1
	TreeBlob uint8 = 2
)

// Compression is how a blob's plaintext was encoded before sealing.
type Compression uint8

const (
	None Compression = 0 // stored as is
	Zstd Compression = 1 // one zstd frame
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Blob describes one blob in a pack. Length is the sealed size in the pack; RawLength the
// plaintext size before compression.
type Blob struct {
	Type        uint8
	Compression Compression
	ID          [32]byte
	Offset      uint32
	Length      uint32
	RawLength   uint32
}

// SealType returns the envelope type of a blob of type t.
func SealType(t uint8) seal.Type {
	if t == TreeBlob {
		return seal.TreeBlob
	}
	return seal.DataBlob
}

// BlobContext is the envelope context of a blob: its type and its ID in vault.
func BlobContext(vault [32]byte, t uint8, id *[32]byte) seal.Context {
	return seal.Context{Type: SealType(t), Vault: vault, Name: id[:]}
}

// HeaderContext is the envelope context of a pack header. It binds no name: the pack's name
// is the hash of the whole file, header included.
func HeaderContext(vault [32]byte) seal.Context {
	return seal.Context{Type: seal.PackHeader, Vault: vault}
}

// ID returns a pack's name: the unkeyed BLAKE3-256 of the whole stored file.
func ID(data []byte) [32]byte { return blake3.Sum256(data) }

// Writer assembles one pack in memory. It is not safe for concurrent use.
type Writer struct {
	buf   []byte
	blobs []Blob
}

// NewWriter returns a Writer appending to buf[:0] (pass nil or a recycled buffer).
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf[:0]} }

// Size returns the bytes written so far (blobs only).
func (w *Writer) Size() int { return len(w.buf) }

// Count returns the number of blobs added.
func (w *Writer) Count() int { return len(w.blobs) }

// Add appends a sealed blob. The caller has sealed it with BlobContext(vault, t, &id).
func (w *Writer) Add(t uint8, id [32]byte, comp Compression, rawLength int, sealed []byte) error {
	const op = "pack.Add"
	if t != DataBlob && t != TreeBlob {
		return errs.Errorf(op, errs.Internal, "blob type %d", t)
	}
	if rawLength < 0 || rawLength > MaxBlobSize || len(sealed) < int(MinSealedBlob) {
		return errs.Errorf(op, errs.Internal, "blob %x: raw length %d, sealed length %d out of range", id[:4], rawLength, len(sealed))
	}
	if int64(len(w.buf))+int64(len(sealed))+MaxHeaderSize+TrailerSize > MaxPackSize || len(w.blobs) >= maxHeaderCount-1 {
		return errs.Errorf(op, errs.Internal, "pack full")
	}
	w.blobs = append(w.blobs, Blob{Type: t, Compression: comp, ID: id, Offset: uint32(len(w.buf)), Length: uint32(len(sealed)), RawLength: uint32(rawLength)})
	w.buf = append(w.buf, sealed...)
	return nil
}

// Blobs returns the blobs added so far.
func (w *Writer) Blobs() []Blob { return w.blobs }

// Finish seals the header, appends it and the trailer, and returns the whole pack, its ID and
// its blobs. The Writer must not be used afterwards.
func (w *Writer) Finish(key *[seal.KeySize]byte, vault [32]byte) (data []byte, id [32]byte, blobs []Blob, err error) {
	hdr := EncodeHeader(w.blobs)
	data, err = seal.Seal(w.buf, key, HeaderContext(vault), hdr)
	if err != nil {
		return nil, id, nil, err
	}
	sealedLen := len(data) - len(w.buf)
	data = binary.LittleEndian.AppendUint32(data, uint32(sealedLen))
	data = append(data, TrailerMagic...)
	return data, ID(data), w.blobs, nil
}

// EncodeHeader returns the plaintext header listing blobs.
func EncodeHeader(blobs []Blob) []byte {
	out := make([]byte, 0, headerFixed+len(blobs)*EntrySize)
	out = append(out, HeaderVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(blobs)))
	for i := range blobs {
		out = AppendEntry(out, &blobs[i])
	}
	return out
}

// AppendEntry appends the EntrySize-byte encoding of b (shared with the index format).
func AppendEntry(dst []byte, b *Blob) []byte {
	dst = append(dst, b.Type, byte(b.Compression))
	dst = append(dst, b.ID[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, b.Offset)
	dst = binary.LittleEndian.AppendUint32(dst, b.Length)
	return binary.LittleEndian.AppendUint32(dst, b.RawLength)
}

// DecodeEntry decodes one EntrySize-byte entry and checks its fields (type, compression,
// lengths) but not its position in a pack.
func DecodeEntry(p []byte) (Blob, error) {
	if len(p) < EntrySize {
		return Blob{}, fmt.Errorf("entry of %d bytes, want %d", len(p), EntrySize)
	}
	var b Blob
	b.Type = p[0]
	b.Compression = Compression(p[1])
	copy(b.ID[:], p[2:34])
	b.Offset = binary.LittleEndian.Uint32(p[34:])
	b.Length = binary.LittleEndian.Uint32(p[38:])
	b.RawLength = binary.LittleEndian.Uint32(p[42:])
	switch {
	case b.Type != DataBlob && b.Type != TreeBlob:
		return b, fmt.Errorf("blob %s: unknown blob type %d", hex.EncodeToString(b.ID[:]), b.Type)
	case b.Compression != None && b.Compression != Zstd:
		return b, fmt.Errorf("blob %s: unknown compression %d", hex.EncodeToString(b.ID[:]), b.Compression)
	case b.Length < MinSealedBlob:
		return b, fmt.Errorf("blob %s: sealed length %d is below the %d-byte envelope", hex.EncodeToString(b.ID[:]), b.Length, MinSealedBlob)
	case b.RawLength > MaxBlobSize:
		return b, fmt.Errorf("blob %s: raw length %d exceeds the %d cap", hex.EncodeToString(b.ID[:]), b.RawLength, MaxBlobSize)
	case b.Compression == None && b.RawLength != b.Length-MinSealedBlob:
		return b, fmt.Errorf("blob %s: uncompressed blob of raw length %d has sealed length %d", hex.EncodeToString(b.ID[:]), b.RawLength, b.Length)
	}
	return b, nil
}

// DecodeHeader decodes a header plaintext for a pack whose blob area is dataSize bytes: every
// blob must lie inside it, in ascending order, without overlap.
func DecodeHeader(p []byte, dataSize int64) ([]Blob, error) {
	if len(p) < headerFixed {
		return nil, fmt.Errorf("header of %d bytes is too short", len(p))
	}
	if p[0] != HeaderVersion {
		return nil, fmt.Errorf("pack header version %d is not supported (this build reads %d)", p[0], HeaderVersion)
	}
	n := binary.LittleEndian.Uint32(p[1:])
	if uint64(n) > maxHeaderCount || uint64(len(p)-headerFixed) != uint64(n)*EntrySize {
		return nil, fmt.Errorf("header says %d blobs but holds %d bytes of entries", n, len(p)-headerFixed)
	}
	blobs := make([]Blob, n)
	var end int64
	for i := range blobs {
		b, err := DecodeEntry(p[headerFixed+i*EntrySize:])
		if err != nil {
			return nil, fmt.Errorf("header entry %d: %w", i, err)
		}
		if int64(b.Offset) < end || int64(b.Offset)+int64(b.Length) > dataSize {
			return nil, fmt.Errorf("header entry %d: blob at %d+%d overlaps another or lies outside the %d-byte blob area", i, b.Offset, b.Length, dataSize)
		}
		end = int64(b.Offset) + int64(b.Length)
		blobs[i] = b
	}
	return blobs, nil
}

// ParseTrailer reads the trailer (the last TrailerSize bytes of a pack of fileSize bytes) and
// returns the length of the sealed header that precedes it.
func ParseTrailer(trailer []byte, fileSize int64) (int, error) {
	if len(trailer) != TrailerSize {
		return 0, fmt.Errorf("trailer of %d bytes, want %d", len(trailer), TrailerSize)
	}
	if string(trailer[4:]) != TrailerMagic {
		return 0, fmt.Errorf("bad trailer magic %q, want %q (truncated or not a pack)", trailer[4:], TrailerMagic)
	}
	n := binary.LittleEndian.Uint32(trailer)
	if n < uint32(seal.Overhead+headerFixed) || n > MaxHeaderSize || int64(n)+TrailerSize > fileSize {
		return 0, fmt.Errorf("header length %d is impossible in a pack of %d bytes", n, fileSize)
	}
	return int(n), nil
}

// OpenHeader authenticates and decodes the sealed header of a pack of fileSize bytes.
func OpenHeader(key *[seal.KeySize]byte, vault [32]byte, sealedHeader []byte, fileSize int64) ([]Blob, error) {
	pt, err := seal.Open(nil, key, HeaderContext(vault), sealedHeader)
	if err != nil {
		return nil, err
	}
	blobs, err := DecodeHeader(pt, fileSize-int64(len(sealedHeader))-TrailerSize)
	if err != nil {
		return nil, errs.E("pack.OpenHeader", errs.Corrupt, err)
	}
	return blobs, nil
}

// Parse authenticates and decodes the header of a whole pack held in data. It does not
// check the pack's name or open the blobs.
func Parse(key *[seal.KeySize]byte, vault [32]byte, data []byte) ([]Blob, error) {
	const op = "pack.Parse"
	if len(data) < TrailerSize {
		return nil, errs.Errorf(op, errs.Corrupt, "pack of %d bytes is too short to hold a trailer (truncated?)", len(data))
	}
	n, err := ParseTrailer(data[len(data)-TrailerSize:], int64(len(data)))
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, err)
	}
	start := len(data) - TrailerSize - n
	return OpenHeader(key, vault, data[start:len(data)-TrailerSize], int64(len(data)))
}
