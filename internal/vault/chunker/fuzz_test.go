package chunker_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

// FuzzChunker checks that for any input, parameters and read pattern the chunks are
// contiguous, within bounds and concatenate to the input, and do not depend on how the
// reader splits its data.
func FuzzChunker(f *testing.F) {
	f.Add([]byte(""), uint16(0), uint8(0), uint16(0), uint16(0))
	f.Add(bytes.Repeat([]byte("a"), 5000), uint16(10), uint8(1), uint16(3), uint16(7))
	f.Add(randomBytes(1, 20000), uint16(300), uint8(2), uint16(1000), uint16(4095))
	f.Add(randomBytes(2, 70000), uint16(9999), uint8(4), uint16(65535), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, minSeed uint16, avgExp uint8, maxSeed uint16, readSeed uint16) {
		avg := 256 << (avgExp % 6) // 256 B .. 8 KiB
		p := chunker.Params{
			Avg: avg,
			Min: chunker.LimitMin + int(minSeed)%(avg-chunker.LimitMin),
			Max: avg + 1 + int(maxSeed)%(4*avg),
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("derived params %+v invalid: %v", p, err)
		}
		chunks := chunkAll(t, bytes.NewReader(data), key1, p)
		if !bytes.Equal(concat(chunks), data) {
			t.Fatal("chunks do not concatenate to the input")
		}
		stutter := chunkAll(t, &limitedReads{data: data, n: int(readSeed)%4096 + 1}, key1, p)
		if len(stutter) != len(chunks) {
			t.Fatalf("%d chunks with short reads, %d without", len(stutter), len(chunks))
		}
		for i := range chunks {
			if stutter[i].Length != chunks[i].Length {
				t.Fatalf("chunk %d: %d bytes with short reads, %d without", i, stutter[i].Length, chunks[i].Length)
			}
		}
	})
}

// limitedReads returns at most n bytes per Read.
type limitedReads struct {
	data []byte
	n    int
}

func (r *limitedReads) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}
