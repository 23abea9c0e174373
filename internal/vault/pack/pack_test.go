package pack_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/pack"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

var (
	key   = &[seal.KeySize]byte{1, 2, 3}
	vault = [32]byte{9}
)

func buildPack(t testing.TB, n int) ([]byte, [32]byte, []pack.Blob, [][]byte) {
	t.Helper()
	w := pack.NewWriter(nil)
	var plain [][]byte
	for i := 0; i < n; i++ {
		pt := bytes.Repeat([]byte{byte(i)}, i*100)
		id := [32]byte{byte(i), 0xAA}
		typ := pack.DataBlob
		if i%3 == 2 {
			typ = pack.TreeBlob
		}
		s, err := seal.Seal(nil, key, pack.BlobContext(vault, typ, &id), pt)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(typ, id, pack.None, len(pt), s); err != nil {
			t.Fatal(err)
		}
		plain = append(plain, pt)
	}
	data, id, blobs, err := w.Finish(key, vault)
	if err != nil {
		t.Fatal(err)
	}
	return data, id, blobs, plain
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		data, id, blobs, plain := buildPack(t, n)
		if id != pack.ID(data) {
			t.Fatal("pack ID is not the hash of its bytes")
		}
		got, err := pack.Parse(key, vault, data)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(got) != n {
			t.Fatalf("n=%d: parsed %d blobs", n, len(got))
		}
		for i, b := range got {
			if b != blobs[i] {
				t.Fatalf("blob %d: %+v != %+v", i, b, blobs[i])
			}
			pt, err := seal.Open(nil, key, pack.BlobContext(vault, b.Type, &b.ID), data[b.Offset:b.Offset+b.Length])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, plain[i]) || int(b.RawLength) != len(plain[i]) {
				t.Fatalf("blob %d differs", i)
			}
		}
		// The header can be read alone from the trailer, as a ranged read does.
		hl, err := pack.ParseTrailer(data[len(data)-pack.TrailerSize:], int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		hdr := data[len(data)-pack.TrailerSize-hl : len(data)-pack.TrailerSize]
		if _, err := pack.OpenHeader(key, vault, hdr, int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseRejectsDamage(t *testing.T) {
	data, _, _, _ := buildPack(t, 5)
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"truncated by one", func(b []byte) []byte { return b[:len(b)-1] }},
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"flipped header byte", func(b []byte) []byte { b[len(b)-pack.TrailerSize-20] ^= 0x10; return b }},
		{"flipped trailer magic", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"huge header length", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[len(b)-pack.TrailerSize:], 0xFFFFFFF0)
			return b
		}},
		{"other vault", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vault
			d := bytes.Clone(data)
			if tc.mut != nil {
				d = tc.mut(d)
			} else {
				v[0]++
			}
			_, err := pack.Parse(key, v, d)
			if !errs.Is(err, errs.Corrupt) {
				t.Fatalf("got %v, want a corrupt error", err)
			}
		})
	}
}

func TestDecodeHeaderChecks(t *testing.T) {
	good := pack.Blob{Type: pack.DataBlob, Compression: pack.Zstd, Offset: 0, Length: 100, RawLength: 500}
	cases := map[string][]pack.Blob{
		"outside area": {{Type: pack.DataBlob, Compression: pack.Zstd, Offset: 950, Length: 100, RawLength: 1}},
		"overlap":      {good, {Type: pack.DataBlob, Compression: pack.Zstd, Offset: 50, Length: 100}},
		"bad type":     {{Type: 9, Length: 100}},
		"bad comp":     {{Type: 1, Compression: 7, Length: 100}},
		"short sealed": {{Type: 1, Compression: pack.Zstd, Length: 10}},
		"raw too big":  {{Type: 1, Compression: pack.Zstd, Length: 100, RawLength: pack.MaxBlobSize + 1}},
		"raw mismatch": {{Type: 1, Compression: pack.None, Length: 100, RawLength: 99}},
	}
	for name, blobs := range cases {
		if _, err := pack.DecodeHeader(pack.EncodeHeader(blobs), 1000); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := pack.DecodeHeader(pack.EncodeHeader([]pack.Blob{good}), 1000); err != nil {
		t.Fatal(err)
	}
	h := pack.EncodeHeader([]pack.Blob{good})
	if _, err := pack.DecodeHeader(h[:len(h)-1], 1000); err == nil {
		t.Error("short entry list accepted")
	}
	h[0] = 2
	if _, err := pack.DecodeHeader(h, 1000); err == nil {
		t.Error("unknown version accepted")
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(pack.EncodeHeader([]pack.Blob{{Type: 1, Compression: 1, Length: 70, RawLength: 3}}), int64(100))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, int64(1<<40))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, p []byte, size int64) {
		blobs, err := pack.DecodeHeader(p, size)
		if err != nil {
			return
		}
		for _, b := range blobs {
			if int64(b.Offset)+int64(b.Length) > size {
				t.Fatalf("blob outside area accepted: %+v", b)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	data, _, want, _ := buildPack(f, 3)
	f.Add(data)
	f.Add(data[len(data)-pack.TrailerSize:])
	f.Add([]byte("RWPK"))
	f.Fuzz(func(t *testing.T, d []byte) {
		// Every pack sealed under this key has the header of buildPack(3) (seals are
		// randomized, so each fuzz worker has its own bytes); nothing else may parse.
		blobs, err := pack.Parse(key, vault, d)
		if err == nil && !reflect.DeepEqual(blobs, want) {
			t.Fatalf("forged header accepted: %+v", blobs)
		}
		if len(d) >= pack.TrailerSize {
			_, _ = pack.ParseTrailer(d[len(d)-pack.TrailerSize:], int64(len(d)))
		}
	})
}
