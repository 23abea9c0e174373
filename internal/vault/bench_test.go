package vault_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

const benchBlob = 1 << 20

func benchVault(b *testing.B) *vault.Repository {
	r, err := vault.Init(context.Background(), mem.New(), "pw", vault.InitOptions{KDF: cheapKDF, Runtime: vault.OpenOptions{Host: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// benchSave saves b.N distinct 1 MiB blobs from g goroutines. Each blob is made distinct
// by a counter in its first bytes, so nothing deduplicates.
func benchSave(b *testing.B, g int, gen func(uint64, int) []byte) {
	ctx := context.Background()
	r := benchVault(b)
	base := make([][]byte, g)
	for i := range base {
		base[i] = gen(uint64(i), benchBlob)
	}
	b.SetBytes(benchBlob)
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := append([]byte(nil), base[w]...)
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				for k := 0; k < 8; k++ {
					data[k] = byte(n >> (8 * k))
				}
				if _, _, err := r.SaveBlob(ctx, vault.DataBlob, data); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSaveBlobRandom1(b *testing.B) { benchSave(b, 1, randBytes) }
func BenchmarkSaveBlobRandom2(b *testing.B) { benchSave(b, 2, randBytes) }
func BenchmarkSaveBlobText1(b *testing.B)   { benchSave(b, 1, textBytes) }
func BenchmarkSaveBlobText2(b *testing.B)   { benchSave(b, 2, textBytes) }

func loadFixture(b *testing.B, n int) (*vault.Repository, []vault.ID) {
	ctx := context.Background()
	r := benchVault(b)
	var ids []vault.ID
	for i := 0; i < n; i++ {
		data := textBytes(uint64(i), benchBlob/2)
		data = append(data, randBytes(uint64(i), benchBlob/2)...)
		id, _, err := r.SaveBlob(ctx, vault.DataBlob, data)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return r, ids
}

func BenchmarkLoadBlob(b *testing.B) {
	ctx := context.Background()
	r, ids := loadFixture(b, 32)
	b.SetBytes(benchBlob)
	b.ResetTimer()
	var buf []byte
	for i := 0; i < b.N; i++ {
		out, err := r.LoadBlob(ctx, vault.DataBlob, ids[i%len(ids)], buf)
		if err != nil {
			b.Fatal(err)
		}
		buf = out
	}
}

func BenchmarkStreamBlobs(b *testing.B) {
	ctx := context.Background()
	r, ids := loadFixture(b, 32)
	b.SetBytes(int64(len(ids)) * benchBlob)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := r.StreamBlobs(ctx, vault.DataBlob, ids, 2, func(vault.ID, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}
