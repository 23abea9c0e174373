package index

import (
	"encoding/binary"
	"fmt"

	"github.com/rewind-dr/rewind/internal/vault/pack"
)

// Layout of an index file's plaintext (docs/FORMAT.md, "Index files"); the file is sealed
// with type seal.Index and its own name:
//
//	version (1)
//	uint32 LE n_supersedes | n_supersedes × index file ID (32)
//	uint32 LE n_packs      | n_packs × ( pack ID (32) | uint32 LE n_blobs | n_blobs × pack entry (46) )
const (
	Version = 1
	// MaxFileSize caps an index file's plaintext.
	MaxFileSize = 256 << 20
	// MaxBlobsPerFile is where the vault starts a new index file.
	MaxBlobsPerFile = 200_000
)

// Pack lists the blobs of one pack.
type Pack struct {
	ID    [32]byte
	Blobs []pack.Blob
}

// File is the content of one index file.
type File struct {
	Supersedes [][32]byte // index files whose entries this one replaces
	Packs      []Pack
}

// Blobs returns the number of blob entries in f.
func (f *File) Blobs() int {
	n := 0
	for i := range f.Packs {
		n += len(f.Packs[i].Blobs)
	}
	return n
}

// Encode returns the plaintext of f.
func Encode(f *File) []byte {
	out := make([]byte, 0, 1+4+32*len(f.Supersedes)+4+f.Blobs()*pack.EntrySize+len(f.Packs)*36)
	out = append(out, Version)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		out = append(out, id[:]...)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(f.Packs)))
	for i := range f.Packs {
		p := &f.Packs[i]
		out = append(out, p.ID[:]...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p.Blobs)))
		for j := range p.Blobs {
			out = pack.AppendEntry(out, &p.Blobs[j])
		}
	}
	return out
}

type reader struct {
	p   []byte
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.p) {
		r.err = fmt.Errorf("truncated: %s needs %d bytes, %d left", what, n, len(r.p))
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) count(what string, each int) int {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n)*uint64(each) > uint64(len(r.p)) {
		r.err = fmt.Errorf("%s count %d needs at least %d bytes, %d left", what, n, uint64(n)*uint64(each), len(r.p))
		return 0
	}
	return int(n)
}

// Decode parses an index file's plaintext, checking every count against the bytes left and
// every entry's fields.
func Decode(p []byte) (*File, error) {
	if len(p) > MaxFileSize {
		return nil, fmt.Errorf("index of %d bytes exceeds the %d-byte cap", len(p), MaxFileSize)
	}
	r := &reader{p: p}
	v := r.take(1, "version")
	if r.err != nil {
		return nil, r.err
	}
	if v[0] != Version {
		return nil, fmt.Errorf("index version %d is not supported (this build reads %d)", v[0], Version)
	}
	f := &File{}
	ns := r.count("supersedes", 32)
	for i := 0; i < ns; i++ {
		var id [32]byte
		copy(id[:], r.take(32, "superseded ID"))
		f.Supersedes = append(f.Supersedes, id)
	}
	np := r.count("packs", 36)
	if r.err != nil {
		return nil, r.err
	}
	f.Packs = make([]Pack, 0, np)
	seen := make(map[[32]byte]bool, np)
	for i := 0; i < np && r.err == nil; i++ {
		var pk Pack
		copy(pk.ID[:], r.take(32, "pack ID"))
		if seen[pk.ID] {
			return nil, fmt.Errorf("pack %x listed twice", pk.ID)
		}
		seen[pk.ID] = true
		nb := r.count("blobs", pack.EntrySize)
		pk.Blobs = make([]pack.Blob, 0, nb)
		var end int64
		for j := 0; j < nb && r.err == nil; j++ {
			b, err := pack.DecodeEntry(r.take(pack.EntrySize, "blob entry"))
			if err != nil {
				return nil, fmt.Errorf("pack %x entry %d: %w", pk.ID, j, err)
			}
			if int64(b.Offset) < end {
				return nil, fmt.Errorf("pack %x entry %d: blob at %d overlaps the previous one", pk.ID, j, b.Offset)
			}
			end = int64(b.Offset) + int64(b.Length)
			pk.Blobs = append(pk.Blobs, b)
		}
		f.Packs = append(f.Packs, pk)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.p) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the last pack", len(r.p))
	}
	return f, nil
}
