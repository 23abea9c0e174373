package index

import (
	"sync"

	"github.com/rewind-dr/rewind/internal/vault/pack"
)

// Key identifies a blob: its type and ID.
type Key struct {
	Type uint8
	ID   [32]byte
}

// location is the compact in-memory entry: 20 bytes beside a 33-byte key.
type location struct {
	pack      uint32 // position in Index.packs
	offset    uint32
	length    uint32
	rawLength uint32
	comp      pack.Compression
}

// Location says where a blob is stored.
type Location struct {
	Pack [32]byte
	Blob pack.Blob
}

// Index maps blobs to their location. When a blob is in several packs, the first one added
// wins. It is safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	packs   [][32]byte
	packPos map[[32]byte]uint32
	blobs   map[Key]location
}

// New returns an empty Index.
func New() *Index {
	return &Index{packPos: make(map[[32]byte]uint32), blobs: make(map[Key]location)}
}

// Add records the blobs of one pack.
func (x *Index) Add(packID [32]byte, blobs []pack.Blob) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos, ok := x.packPos[packID]
	if !ok {
		pos = uint32(len(x.packs))
		x.packs = append(x.packs, packID)
		x.packPos[packID] = pos
	}
	for i := range blobs {
		b := &blobs[i]
		k := Key{Type: b.Type, ID: b.ID}
		if _, dup := x.blobs[k]; dup {
			continue
		}
		x.blobs[k] = location{pack: pos, offset: b.Offset, length: b.Length, rawLength: b.RawLength, comp: b.Compression}
	}
}

// AddFile records every pack of f.
func (x *Index) AddFile(f *File) {
	for i := range f.Packs {
		x.Add(f.Packs[i].ID, f.Packs[i].Blobs)
	}
}

// Lookup returns where the blob is stored.
func (x *Index) Lookup(t uint8, id [32]byte) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l, ok := x.blobs[Key{Type: t, ID: id}]
	if !ok {
		return Location{}, false
	}
	return Location{Pack: x.packs[l.pack], Blob: pack.Blob{Type: t, ID: id, Compression: l.comp, Offset: l.offset, Length: l.length, RawLength: l.rawLength}}, true
}

// Has reports whether the blob is indexed.
func (x *Index) Has(t uint8, id [32]byte) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.blobs[Key{Type: t, ID: id}]
	return ok
}

// HasPack reports whether pack id was added.
func (x *Index) HasPack(id [32]byte) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.packPos[id]
	return ok
}

// Len returns the number of indexed blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// Packs returns the IDs of every pack added.
func (x *Index) Packs() [][32]byte {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([][32]byte(nil), x.packs...)
}
