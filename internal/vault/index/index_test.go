package index_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/rewind-dr/rewind/internal/vault/index"
	"github.com/rewind-dr/rewind/internal/vault/pack"
)

func sample() *index.File {
	return &index.File{
		Supersedes: [][32]byte{{1}, {2}},
		Packs: []index.Pack{
			{ID: [32]byte{10}, Blobs: []pack.Blob{
				{Type: pack.DataBlob, Compression: pack.Zstd, ID: [32]byte{100}, Offset: 0, Length: 80, RawLength: 200},
				{Type: pack.TreeBlob, Compression: pack.None, ID: [32]byte{101}, Offset: 80, Length: 70, RawLength: 4},
			}},
			{ID: [32]byte{11}, Blobs: []pack.Blob{}},
		},
	}
}

func TestEncodeDecode(t *testing.T) {
	f := sample()
	got, err := index.Decode(index.Encode(f))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip differs:\n%+v\n%+v", got, f)
	}
	empty, err := index.Decode(index.Encode(&index.File{}))
	if err != nil || len(empty.Packs) != 0 || len(empty.Supersedes) != 0 {
		t.Fatalf("empty index: %+v %v", empty, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := index.Encode(sample())
	dup := sample()
	dup.Packs[1].ID = dup.Packs[0].ID
	for name, p := range map[string][]byte{
		"empty":       nil,
		"version":     append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(bytes.Clone(good), 0),
		"huge count":  {1, 0xff, 0xff, 0xff, 0x7f},
		"dup pack":    index.Encode(dup),
		"bad entry":   func() []byte { b := bytes.Clone(good); b[1+4+64+4+32+4] = 7; return b }(),
		"no packs":    {1, 0, 0, 0, 0},
		"overlapping": index.Encode(&index.File{Packs: []index.Pack{{Blobs: []pack.Blob{{Type: 1, Compression: 1, Length: 80, Offset: 10}, {Type: 1, Compression: 1, Length: 80, Offset: 20}}}}}),
	} {
		if _, err := index.Decode(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIndexLookup(t *testing.T) {
	x := index.New()
	x.AddFile(sample())
	// A duplicate in a later pack does not replace the first location.
	x.Add([32]byte{12}, []pack.Blob{{Type: pack.DataBlob, ID: [32]byte{100}, Offset: 5, Length: 80, RawLength: 200}})
	loc, ok := x.Lookup(pack.DataBlob, [32]byte{100})
	if !ok || loc.Pack != ([32]byte{10}) || loc.Blob.Length != 80 || loc.Blob.RawLength != 200 || loc.Blob.Compression != pack.Zstd {
		t.Fatalf("lookup: %+v %v", loc, ok)
	}
	if x.Has(pack.TreeBlob, [32]byte{100}) {
		t.Fatal("type is part of the key")
	}
	if !x.Has(pack.TreeBlob, [32]byte{101}) || x.Len() != 2 || len(x.Packs()) != 3 || !x.HasPack([32]byte{10}) {
		t.Fatalf("has/len/packs wrong: %d %d", x.Len(), len(x.Packs()))
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(index.Encode(sample()))
	f.Add(index.Encode(&index.File{}))
	f.Add([]byte{1, 0, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		file, err := index.Decode(p)
		if err != nil {
			return
		}
		if !bytes.Equal(index.Encode(file), p) {
			t.Fatal("accepted input does not re-encode to itself")
		}
	})
}
