package chunker_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	_, _ = r.Read(b)
	return b
}

// BenchmarkChunker measures chunking throughput (boundary scan plus the copy into the
// caller's buffer) on random data with DefaultParams.
func BenchmarkChunker(b *testing.B) {
	data := randomBytes(1, 64<<20)
	var key [32]byte
	buf := make([]byte, chunker.DefaultParams.Max)
	c := chunker.New(nil, key, chunker.DefaultParams)
	run := func() {
		c.Reset(bytes.NewReader(data))
		for {
			_, err := c.Next(buf)
			if err == io.EOF {
				return
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	run() // grow the chunker's buffer once, as a long-lived chunker would have
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}
