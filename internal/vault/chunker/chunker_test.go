package chunker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

var (
	key1 = [32]byte{1, 2, 3, 4, 5, 6, 7, 8}
	key2 = [32]byte{9, 9, 9}
	// small gives many chunks from little data, so tests stay fast.
	small = chunker.Params{Min: 2 << 10, Avg: 8 << 10, Max: 64 << 10}
)

// chunkAll chunks everything rd yields and checks the invariants every stream must keep:
// chunks are contiguous, Data has Length bytes, and all but the last are within Min..Max.
func chunkAll(t testing.TB, rd io.Reader, key [32]byte, p chunker.Params) []chunker.Chunk {
	t.Helper()
	c := chunker.New(rd, key, p)
	var out []chunker.Chunk
	var next uint64
	for {
		ch, err := c.Next(nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d chunks: %v", len(out), err)
		}
		if ch.Start != next {
			t.Fatalf("chunk %d starts at %d, want %d", len(out), ch.Start, next)
		}
		if ch.Length != len(ch.Data) || ch.Length == 0 {
			t.Fatalf("chunk %d: Length %d, len(Data) %d", len(out), ch.Length, len(ch.Data))
		}
		next += uint64(ch.Length)
		out = append(out, ch)
	}
	if _, err := c.Next(nil); err != io.EOF {
		t.Fatalf("Next after io.EOF = %v, want io.EOF again", err)
	}
	for i, ch := range out[:max(len(out)-1, 0)] {
		if ch.Length <= p.Min || ch.Length > p.Max {
			t.Fatalf("chunk %d of %d has length %d, outside (%d, %d]", i, len(out), ch.Length, p.Min, p.Max)
		}
	}
	if len(out) > 0 && out[len(out)-1].Length > p.Max {
		t.Fatalf("last chunk has length %d > Max %d", out[len(out)-1].Length, p.Max)
	}
	return out
}

func concat(chunks []chunker.Chunk) []byte {
	var b bytes.Buffer
	for _, ch := range chunks {
		b.Write(ch.Data)
	}
	return b.Bytes()
}

func boundaries(chunks []chunker.Chunk) []uint64 {
	out := make([]uint64, len(chunks))
	for i, ch := range chunks {
		out[i] = ch.Start + uint64(ch.Length)
	}
	return out
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name string
		p    chunker.Params
		ok   bool
	}{
		{"default", chunker.DefaultParams, true},
		{"smallest", chunker.Params{Min: 64, Avg: 256, Max: 257}, true},
		{"largest", chunker.Params{Min: 64 << 20, Avg: 128 << 20, Max: 256 << 20}, true},
		{"zero", chunker.Params{}, false},
		{"avg not power of two", chunker.Params{Min: 512, Avg: 3000, Max: 8192}, false},
		{"avg too small", chunker.Params{Min: 64, Avg: 128, Max: 1024}, false},
		{"min too small", chunker.Params{Min: 63, Avg: 1024, Max: 4096}, false},
		{"min equals avg", chunker.Params{Min: 1024, Avg: 1024, Max: 4096}, false},
		{"min above avg", chunker.Params{Min: 2048, Avg: 1024, Max: 4096}, false},
		{"max equals avg", chunker.Params{Min: 512, Avg: 1024, Max: 1024}, false},
		{"max too large", chunker.Params{Min: 512, Avg: 1 << 20, Max: 512 << 20}, false},
		{"negative", chunker.Params{Min: -1, Avg: 1024, Max: 4096}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tt.p, err)
				}
				return
			}
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Validate(%+v) = %v, want an errs.Invalid error", tt.p, err)
			}
			if errs.HintOf(err) == "" {
				t.Errorf("Validate(%+v) error has no hint", tt.p)
			}
		})
	}
}

func TestNewInvalidParams(t *testing.T) {
	c := chunker.New(bytes.NewReader([]byte("data")), key1, chunker.Params{Min: 1, Avg: 3, Max: 2})
	for range 2 {
		if _, err := c.Next(nil); !errs.Is(err, errs.Invalid) {
			t.Fatalf("Next = %v, want errs.Invalid", err)
		}
	}
	c.Reset(bytes.NewReader(nil))
	if _, err := c.Next(nil); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Next after Reset = %v, want errs.Invalid still", err)
	}
}

func TestNilReader(t *testing.T) {
	c := chunker.New(nil, key1, small)
	if _, err := c.Next(nil); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Next with nil reader = %v, want errs.Invalid", err)
	}
}

func TestGearTable(t *testing.T) {
	a, b := chunker.GearTable(key1), chunker.GearTable(key1)
	if a != b {
		t.Fatal("GearTable is not deterministic")
	}
	if a == chunker.GearTable(key2) {
		t.Fatal("GearTable ignores the key")
	}
	seen := map[uint64]bool{}
	for _, v := range a {
		seen[v] = true
	}
	if len(seen) != 256 {
		t.Fatalf("GearTable has %d distinct values, want 256", len(seen))
	}
	// The derivation is part of the vault format: these values must never change.
	z := chunker.GearTable([32]byte{})
	if got := fmt.Sprintf("%016x %016x", z[0], z[255]); got != goldenGear {
		t.Fatalf("GearTable(zero key)[0], [255] = %s, want %s (the vault format changed)", got, goldenGear)
	}
}

const goldenGear = "4d23106618de0a75 f2278eb061d447b2"

// TestGoldenBoundaries pins the boundaries of a fixed input, so a change to the algorithm
// (which would stop new backups from deduplicating against old ones) fails loudly.
func TestGoldenBoundaries(t *testing.T) {
	data := randomBytes(7, 4<<20)
	h := sha256.New()
	for _, b := range boundaries(chunkAll(t, bytes.NewReader(data), key1, small)) {
		fmt.Fprintf(h, "%d\n", b)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenBoundaries {
		t.Fatalf("boundary digest = %s, want %s (chunk boundaries changed)", got, goldenBoundaries)
	}
}

const goldenBoundaries = "8048d7248c03bf4eb3d6310be261851d0d9d7e6e5480f37dd1b853832eb6f432"

func TestDeterministicAndConcatenates(t *testing.T) {
	params := []chunker.Params{
		small,
		{Min: 64, Avg: 256, Max: 1024},
		{Min: 1001, Avg: 2048, Max: 3333}, // odd sizes exercise the two-byte scan's tail
		chunker.DefaultParams,
	}
	data := randomBytes(1, 24<<20)
	for _, p := range params {
		t.Run(fmt.Sprintf("%d-%d-%d", p.Min, p.Avg, p.Max), func(t *testing.T) {
			a := chunkAll(t, bytes.NewReader(data), key1, p)
			b := chunkAll(t, bytes.NewReader(data), key1, p)
			if !bytes.Equal(concat(a), data) {
				t.Fatal("chunks do not concatenate to the input")
			}
			if fmt.Sprint(boundaries(a)) != fmt.Sprint(boundaries(b)) {
				t.Fatal("two runs over the same input gave different boundaries")
			}
			if len(a) < 2 {
				t.Fatalf("only %d chunks from %d bytes", len(a), len(data))
			}
		})
	}
}

func TestResetReusesChunker(t *testing.T) {
	d1, d2 := randomBytes(1, 1<<20), randomBytes(2, 1<<20)
	c := chunker.New(bytes.NewReader(d1), key1, small)
	for {
		if _, err := c.Next(nil); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	c.Reset(bytes.NewReader(d2))
	var got []uint64
	for {
		ch, err := c.Next(nil)
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.Start+uint64(ch.Length))
	}
	want := boundaries(chunkAll(t, bytes.NewReader(d2), key1, small))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("a reset chunker cut differently from a new one")
	}
}

func TestKeyChangesBoundaries(t *testing.T) {
	data := randomBytes(3, 8<<20)
	a := boundaries(chunkAll(t, bytes.NewReader(data), key1, small))
	b := boundaries(chunkAll(t, bytes.NewReader(data), key2, small))
	inA := map[uint64]bool{}
	for _, x := range a {
		inA[x] = true
	}
	shared := 0
	for _, x := range b[:len(b)-1] { // the end of the input is a boundary for every key
		if inA[x] {
			shared++
		}
	}
	if shared > len(b)/20 {
		t.Fatalf("%d of %d boundaries are the same under two keys, want almost none", shared, len(b))
	}
}

func TestAverageSize(t *testing.T) {
	for _, tt := range []struct {
		p    chunker.Params
		size int
	}{
		{small, 16 << 20},
		{chunker.Params{Min: 64, Avg: 4096, Max: 64 << 10}, 16 << 20},
		{chunker.DefaultParams, 128 << 20},
	} {
		t.Run(fmt.Sprint(tt.p.Avg), func(t *testing.T) {
			chunks := chunkAll(t, bytes.NewReader(randomBytes(4, tt.size)), key1, tt.p)
			mean := float64(tt.size) / float64(len(chunks))
			if mean < 0.75*float64(tt.p.Avg) || mean > 1.25*float64(tt.p.Avg) {
				t.Fatalf("mean chunk size %.0f over %d chunks, want within 25%% of %d", mean, len(chunks), tt.p.Avg)
			}
			t.Logf("mean chunk size %.0f (Avg %d) over %d chunks", mean, tt.p.Avg, len(chunks))
		})
	}
}

func TestShiftResistance(t *testing.T) {
	if testing.Short() {
		t.Log("-short: using 16 MiB instead of 64 MiB")
	}
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	data := randomBytes(5, size)
	for _, at := range []int{0, 1000, 3 << 20} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			edited := make([]byte, 0, len(data)+5)
			edited = append(edited, data[:at]...)
			edited = append(edited, "hello"...)
			edited = append(edited, data[at:]...)
			orig := chunkAll(t, bytes.NewReader(data), key1, chunker.DefaultParams)
			mod := chunkAll(t, bytes.NewReader(edited), key1, chunker.DefaultParams)
			known := map[[32]byte]bool{}
			for _, ch := range orig {
				known[sha256.Sum256(ch.Data)] = true
			}
			changed := 0
			for _, ch := range mod {
				if !known[sha256.Sum256(ch.Data)] {
					changed++
				}
			}
			if changed > 2 {
				t.Fatalf("inserting 5 bytes at %d changed %d of %d chunks, want at most 2", at, changed, len(mod))
			}
			if changed == 0 {
				t.Fatal("inserting bytes changed no chunk")
			}
		})
	}
}

func TestSmallInputs(t *testing.T) {
	p := chunker.Params{Min: 100, Avg: 256, Max: 300}
	for _, n := range []int{0, 1, 2, 63, 64, 99, 100, 101, 255, 299, 300, 301, 599, 600, 601} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randomBytes(uint64(n), n)
			chunks := chunkAll(t, bytes.NewReader(data), key1, p)
			if !bytes.Equal(concat(chunks), data) {
				t.Fatal("chunks do not concatenate to the input")
			}
			switch {
			case n == 0 && len(chunks) != 0:
				t.Fatalf("empty input gave %d chunks", len(chunks))
			case n > 0 && n <= p.Min && len(chunks) != 1:
				t.Fatalf("%d bytes (<= Min) gave %d chunks, want 1", n, len(chunks))
			case len(chunks) > 0 && n > p.Max*len(chunks):
				t.Fatalf("%d bytes in only %d chunks", n, len(chunks))
			}
		})
	}
}

func TestUniformInputCutAtMax(t *testing.T) {
	// A run of one byte value has a constant hash once the window is full, so it is either
	// cut at Min+1 everywhere or never: with these keys it is never, and every chunk is Max.
	p := chunker.Params{Min: 512, Avg: 4096, Max: 16384}
	data := make([]byte, 3*p.Max+10)
	chunks := chunkAll(t, bytes.NewReader(data), key1, p)
	if len(chunks) != 4 || chunks[0].Length != p.Max || chunks[3].Length != 10 {
		t.Fatalf("got %d chunks, first %d bytes; want 3 of Max and one of 10", len(chunks), chunks[0].Length)
	}
}

func TestShortReads(t *testing.T) {
	data := randomBytes(6, 3<<20)
	want := fmt.Sprint(boundaries(chunkAll(t, bytes.NewReader(data), key1, small)))
	readers := map[string]func() io.Reader{
		"one byte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:400<<10])) },
		"half":      func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF":  func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"odd sizes": func() io.Reader { return &stutterReader{data: data} },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			got := chunkAll(t, mk(), key1, small)
			ref := want
			if name == "one byte" {
				ref = fmt.Sprint(boundaries(chunkAll(t, bytes.NewReader(data[:400<<10]), key1, small)))
			}
			if fmt.Sprint(boundaries(got)) != ref {
				t.Fatal("short reads changed the boundaries")
			}
		})
	}
}

// stutterReader returns 1, 2, 3, ... 4096, 1, 2, ... bytes per call, with an occasional
// (0, nil).
type stutterReader struct {
	data []byte
	n    int
}

func (r *stutterReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.n = r.n%4096 + 1
	if r.n%97 == 0 {
		return 0, nil
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}

var errDisk = errors.New("disk on fire")

func TestReadErrorPropagates(t *testing.T) {
	data := randomBytes(8, 1<<20)
	rd := io.MultiReader(bytes.NewReader(data[:700<<10]), iotest.ErrReader(errDisk))
	c := chunker.New(rd, key1, small)
	var got []byte
	var err error
	for {
		var ch chunker.Chunk
		ch, err = c.Next(nil)
		if err != nil {
			break
		}
		got = append(got, ch.Data...)
	}
	if !errors.Is(err, errDisk) {
		t.Fatalf("Next = %v, want an error wrapping the reader's", err)
	}
	if !bytes.HasPrefix(data, got) || len(got) > 700<<10 {
		t.Fatalf("chunks before the error are not a prefix of the input (%d bytes)", len(got))
	}
	if _, err2 := c.Next(nil); !errors.Is(err2, errDisk) {
		t.Fatalf("Next after an error = %v, want the same error again", err2)
	}
	c.Reset(bytes.NewReader(data))
	if _, err := c.Next(nil); err != nil {
		t.Fatalf("Next after Reset = %v, want the read error forgotten", err)
	}
}

func TestReadErrorAtStart(t *testing.T) {
	c := chunker.New(iotest.ErrReader(errDisk), key1, small)
	if _, err := c.Next(nil); !errors.Is(err, errDisk) {
		t.Fatalf("Next = %v, want the reader's error", err)
	}
}

func TestReaderWithoutProgress(t *testing.T) {
	c := chunker.New(zeroReader{}, key1, small)
	if _, err := c.Next(nil); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next = %v, want io.ErrNoProgress", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestCallerBuffer(t *testing.T) {
	data := randomBytes(9, 1<<20)
	c := chunker.New(bytes.NewReader(data), key1, small)
	buf := make([]byte, small.Max)
	ch, err := c.Next(buf)
	if err != nil {
		t.Fatal(err)
	}
	if &ch.Data[0] != &buf[0] {
		t.Fatal("Next did not use the caller's buffer of capacity Max")
	}
	tiny := make([]byte, 10)
	ch2, err := c.Next(tiny)
	if err != nil {
		t.Fatal(err)
	}
	if ch2.Length <= 10 || &ch2.Data[0] == &tiny[0] {
		t.Fatal("Next did not grow a too-small buffer")
	}
	if !bytes.Equal(ch2.Data, data[ch2.Start:ch2.Start+uint64(ch2.Length)]) {
		t.Fatal("grown buffer holds the wrong bytes")
	}
	// Reusing the buffer must not disturb later chunks.
	got := append([]byte{}, ch.Data...)
	got = append(got, ch2.Data...)
	for {
		ch, err := c.Next(buf)
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.Data...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("chunks read into a reused buffer do not concatenate to the input")
	}
}
