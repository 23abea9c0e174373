package vault

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/rewind-dr/rewind/internal/vault/pack"
)

// Compression policy (docs/FORMAT.md, "Compression"): zstd at its fastest level; a blob is
// stored raw unless compression saves at least 1/16 of it. Blobs over sampleMin bytes are
// first tried on three small samples so random data is rejected after compressing 12 KiB
// instead of the whole blob.
const (
	minCompress = 128
	sampleMin   = 64 << 10
	sampleSize  = 4 << 10
)

var (
	zOnce sync.Once
	zEnc  *zstd.Encoder
	zDec  *zstd.Decoder
)

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder) {
	zOnce.Do(func() {
		var err error
		zEnc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(false), // the envelope authenticates every byte
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder options: %v", err)) // constant options: a bug
		}
		zDec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(pack.MaxBlobSize),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder options: %v", err))
		}
	})
	return zEnc, zDec
}

// compress returns the encoding of data to store (data itself when compression does not
// pay) and its compression. dst is scratch space that may be returned grown.
func compress(dst, data []byte) ([]byte, pack.Compression) {
	if len(data) < minCompress {
		return data, pack.None
	}
	enc, _ := zstdCodecs()
	if len(data) >= sampleMin {
		mid := len(data)/2 - sampleSize/2
		sample := make([]byte, 0, 3*sampleSize)
		sample = append(sample, data[:sampleSize]...)
		sample = append(sample, data[mid:mid+sampleSize]...)
		sample = append(sample, data[len(data)-sampleSize:]...)
		trial := enc.EncodeAll(sample, dst[:0])
		if len(trial) > len(sample)-len(sample)/32 {
			return data, pack.None
		}
		dst = trial
	}
	out := enc.EncodeAll(data, dst[:0])
	if len(out) > len(data)-len(data)/16 {
		return data, pack.None
	}
	return out, pack.Zstd
}

// decompress decodes a stored blob into dst[:0] (grown as needed), requiring exactly
// rawLength bytes of output.
func decompress(dst, stored []byte, comp pack.Compression, rawLength uint32) ([]byte, error) {
	switch comp {
	case pack.None:
		if len(stored) != int(rawLength) {
			return nil, fmt.Errorf("stored %d bytes, index says %d", len(stored), rawLength)
		}
		return append(dst[:0], stored...), nil
	case pack.Zstd:
		if cap(dst) < int(rawLength) {
			dst = make([]byte, 0, rawLength)
		}
		_, dec := zstdCodecs()
		out, err := dec.DecodeAll(stored, dst[:0:rawLength])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) != int(rawLength) {
			return nil, fmt.Errorf("decompressed to %d bytes, index says %d", len(out), rawLength)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compression %d", comp)
}
