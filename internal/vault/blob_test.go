package vault_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

func TestBlobRoundTrip(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "pw", vault.OpenOptions{})
	blobs := map[string][]byte{
		"empty":        {},
		"one":          {42},
		"small text":   textBytes(1, 100),
		"4k zeros":     make([]byte, 4096),
		"64k random":   randBytes(2, 64<<10),
		"1M random":    randBytes(3, 1<<20),
		"3M text":      textBytes(4, 3<<20),
		"odd random":   randBytes(5, 100_003),
		"200k text":    textBytes(6, 200<<10),
		"compressible": bytes.Repeat([]byte("abcdefgh"), 50_000),
	}
	ids := map[string]vault.ID{}
	for name, data := range blobs {
		id, added, err := r.SaveBlob(ctx, vault.DataBlob, data)
		if err != nil || !added {
			t.Fatalf("%s: added=%v err=%v", name, added, err)
		}
		ids[name] = id
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(r *vault.Repository) {
		for name, data := range blobs {
			got, err := r.LoadBlob(ctx, vault.DataBlob, ids[name], nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: loaded bytes differ", name)
			}
			if n, ok := r.BlobSize(vault.DataBlob, ids[name]); !ok || int(n) != len(data) {
				t.Fatalf("%s: BlobSize %d %v", name, n, ok)
			}
			if !r.HasBlob(vault.DataBlob, ids[name]) || r.HasBlob(vault.TreeBlob, ids[name]) {
				t.Fatalf("%s: HasBlob wrong", name)
			}
		}
	}
	check(r)
	check(openVault(t, be, "pw", vault.OpenOptions{}))

	// Compression: the compressible blob is stored small, random data is not inflated.
	var stored int64
	be.List(ctx, backend.Pack, func(fi backend.FileInfo) error { stored += fi.Size; return nil })
	var raw int
	for _, b := range blobs {
		raw += len(b)
	}
	if stored >= int64(raw) {
		t.Fatalf("stored %d bytes for %d bytes of blobs with compressible data", stored, raw)
	}

	_, err := r.LoadBlob(ctx, vault.DataBlob, vault.ID{1}, nil)
	wantKind(t, err, errs.NotFound)
	_, _, err = r.SaveBlob(ctx, vault.BlobType(9), []byte("x"))
	wantKind(t, err, errs.Invalid)
}

func TestDedup(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "pw", vault.OpenOptions{})
	data := randBytes(9, 10_000)
	id1, added1, err1 := r.SaveBlob(ctx, vault.DataBlob, data)
	id2, added2, err2 := r.SaveBlob(ctx, vault.DataBlob, data) // in flight
	if err1 != nil || err2 != nil || id1 != id2 || !added1 || added2 {
		t.Fatalf("in-flight dedup: %v %v %v %v", added1, added2, err1, err2)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, added, _ := r.SaveBlob(ctx, vault.DataBlob, data); added {
		t.Fatal("indexed blob added again")
	}
	// The same bytes as a tree are a different blob.
	if _, added, _ := r.SaveBlob(ctx, vault.TreeBlob, data); !added {
		t.Fatal("tree with data's bytes deduplicated against the data blob")
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := openVault(t, be, "pw", vault.OpenOptions{})
	if _, added, _ := r2.SaveBlob(ctx, vault.DataBlob, data); added {
		t.Fatal("blob added again after reopening")
	}
	if s := r.Stats(); s.BlobsAdded != 2 || s.BytesAdded != 20_000 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConcurrentSaveBlob(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	var progress []vault.SaveStats
	r := initVault(t, be, "pw", vault.OpenOptions{Uploaders: 2, Progress: func(s vault.SaveStats) { progress = append(progress, s) }})
	const workers, per, unique = 8, 60, 150
	var mu sync.Mutex
	added := 0
	ids := make(map[vault.ID]int)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				n := (w*per + i*7) % unique
				id, a, err := r.SaveBlob(ctx, vault.DataBlob, randBytes(uint64(n), 3000+n))
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				if a {
					added++
				}
				ids[id] = n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if added != len(ids) {
		t.Fatalf("%d blobs reported added for %d distinct blobs", added, len(ids))
	}
	r2 := openVault(t, be, "pw", vault.OpenOptions{})
	for id, n := range ids {
		got, err := r2.LoadBlob(ctx, vault.DataBlob, id, nil)
		if err != nil || !bytes.Equal(got, randBytes(uint64(n), 3000+n)) {
			t.Fatalf("blob %d: %v", n, err)
		}
	}
	if len(progress) == 0 || progress[len(progress)-1].PacksUploaded != uint64(len(names(t, be, backend.Pack))) {
		t.Fatalf("progress %+v", progress)
	}
}

func TestStreamBlobs(t *testing.T) {
	ctx := context.Background()
	r := initVault(t, mem.New(), "pw", vault.OpenOptions{})
	want := map[vault.ID][]byte{}
	var ids []vault.ID
	for i := 0; i < 80; i++ {
		b := textBytes(uint64(i), 1000+i*37)
		id, _, err := r.SaveBlob(ctx, vault.DataBlob, b)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = b
		ids = append(ids, id, id) // listed twice
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[vault.ID]int{}
	err := r.StreamBlobs(ctx, vault.DataBlob, ids, 3, func(id vault.ID, data []byte) error {
		if !bytes.Equal(data, want[id]) {
			return fmt.Errorf("blob %s: bytes differ", id.Short())
		}
		mu.Lock()
		got[id]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if got[id] != 1 {
			t.Fatalf("blob %s delivered %d times", id.Short(), got[id])
		}
	}
	err = r.StreamBlobs(ctx, vault.DataBlob, append(ids, vault.ID{7}), 2, func(vault.ID, []byte) error { return nil })
	wantKind(t, err, errs.NotFound)
	stop := fmt.Errorf("stop here")
	err = r.StreamBlobs(ctx, vault.DataBlob, ids, 2, func(vault.ID, []byte) error { return stop })
	if err == nil || !strings.Contains(err.Error(), "stop here") {
		t.Fatalf("fn error not returned: %v", err)
	}
}

func TestIDsAreKeyed(t *testing.T) {
	ctx := context.Background()
	a := initVault(t, mem.New(), "pw", vault.OpenOptions{})
	b := initVault(t, mem.New(), "pw", vault.OpenOptions{})
	data := []byte("the same plaintext in two vaults")
	ida, _, _ := a.SaveBlob(ctx, vault.DataBlob, data)
	idb, _, _ := b.SaveBlob(ctx, vault.DataBlob, data)
	if ida == idb {
		t.Fatal("two vaults give the same ID")
	}
	if ida == vault.ID(blake3.Sum256(data)) || ida == vault.ID(sha256.Sum256(data)) {
		t.Fatal("ID reveals a plain hash of the plaintext")
	}
	if a.ID() == b.ID() || len(a.ID()) != 64 {
		t.Fatal("vault IDs")
	}
}

func TestVerifyBeforeUpload(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "pw", vault.OpenOptions{Hooks: vault.Hooks{AfterSeal: func(_ vault.BlobType, _ vault.ID, sealed []byte) {
		sealed[len(sealed)/2] ^= 0x04
	}}})
	_, _, err := r.SaveBlob(ctx, vault.DataBlob, textBytes(1, 5000))
	wantKind(t, err, errs.Corrupt, "corruption detected before upload")
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := names(t, be, backend.Pack); len(n) != 0 {
		t.Fatalf("packs stored: %v", n)
	}

	be2 := mem.New()
	r2 := initVault(t, be2, "pw", vault.OpenOptions{Hooks: vault.Hooks{BeforeUpload: func(_ backend.Handle, data []byte) {
		data[3] ^= 1
	}}})
	if _, _, err := r2.SaveBlob(ctx, vault.DataBlob, textBytes(2, 5000)); err != nil {
		t.Fatal(err)
	}
	wantKind(t, r2.Flush(ctx), errs.Corrupt, "corruption detected before upload")
	if n := names(t, be2, backend.Pack); len(n) != 0 {
		t.Fatalf("packs stored: %v", n)
	}
	if n := names(t, be2, backend.Index); len(n) != 0 {
		t.Fatalf("index stored: %v", n)
	}
}

func TestUploadErrorSurfaces(t *testing.T) {
	ctx := context.Background()
	f := &faulty{Backend: mem.New()}
	r := initVault(t, f, "pw", vault.OpenOptions{})
	f.set(func(op string, h backend.Handle) bool { return op == "save" && h.Type == backend.Pack })
	if _, _, err := r.SaveBlob(ctx, vault.DataBlob, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	wantKind(t, r.Flush(ctx), errs.Unavailable, "injected")
	_, _, err := r.SaveBlob(ctx, vault.DataBlob, []byte("later"))
	wantKind(t, err, errs.Unavailable)
}
