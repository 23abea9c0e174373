package seal_test

import (
	"bytes"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

func testKey(b byte) *[seal.KeySize]byte {
	var k [seal.KeySize]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return &k
}

func TestRoundTrip(t *testing.T) {
	key := testKey(1)
	c := seal.Context{Type: seal.DataBlob, Vault: [32]byte{7}, Name: []byte("blob-1")}
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 1 << 20} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		s, err := seal.Seal([]byte("prefix"), key, c, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != len("prefix")+n+seal.Overhead {
			t.Fatalf("size %d: sealed %d bytes, want %d", n, len(s), len("prefix")+n+seal.Overhead)
		}
		if seal.PlaintextSize(len(s)-len("prefix")) != n {
			t.Fatalf("PlaintextSize mismatch")
		}
		out, err := seal.Open(nil, key, c, s[len("prefix"):])
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(out, pt) {
			t.Fatalf("size %d: plaintext differs", n)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	key := testKey(1)
	c := seal.Context{Type: seal.Point, Name: []byte("p")}
	a, _ := seal.Seal(nil, key, c, []byte("same"))
	b, _ := seal.Seal(nil, key, c, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestOpenRejects(t *testing.T) {
	key := testKey(1)
	c := seal.Context{Type: seal.TreeBlob, Vault: [32]byte{1}, Name: []byte("id-a")}
	good, err := seal.Seal(nil, key, c, []byte("hello tree"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	cases := []struct {
		name   string
		key    *[seal.KeySize]byte
		ctx    seal.Context
		sealed []byte
	}{
		{"wrong key", testKey(2), c, good},
		{"other name", key, seal.Context{Type: c.Type, Vault: c.Vault, Name: []byte("id-b")}, good},
		{"other vault", key, seal.Context{Type: c.Type, Vault: [32]byte{2}, Name: c.Name}, good},
		{"other type", key, seal.Context{Type: seal.DataBlob, Vault: c.Vault, Name: c.Name}, good},
		{"flipped magic", key, c, flip(0)},
		{"flipped version", key, c, flip(4)},
		{"flipped type", key, c, flip(5)},
		{"flipped salt", key, c, flip(10)},
		{"flipped nonce", key, c, flip(seal.HeaderSize - 1)},
		{"flipped ciphertext", key, c, flip(seal.HeaderSize)},
		{"flipped tag", key, c, flip(len(good) - 1)},
		{"truncated", key, c, good[:len(good)-1]},
		{"too short", key, c, good[:seal.Overhead-1]},
		{"empty", key, c, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := seal.Open(nil, tc.key, tc.ctx, tc.sealed)
			if err == nil {
				t.Fatalf("opened: %q", out)
			}
			if !errs.Is(err, errs.Corrupt) {
				t.Fatalf("kind %v, want corrupt: %v", errs.KindOf(err), err)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	key := testKey(3)
	c := seal.Context{Type: seal.Index, Name: []byte("x")}
	good, _ := seal.Seal(nil, key, c, []byte("index body"))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("RWSE\x01\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Seals are randomized, so each fuzz worker seals its own seed; the only plaintext
		// ever sealed under this key and context is "index body", so nothing else may open.
		out, err := seal.Open(nil, key, c, data)
		if err == nil && string(out) != "index body" {
			t.Fatalf("forged object opened: %q", out)
		}
	})
}
