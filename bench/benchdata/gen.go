package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Summary counts what a command wrote or changed.
type Summary struct {
	Files        int   // files written or examined
	Bytes        int64 // bytes written, or bytes in examined files after mutation
	Changed      int   // files changed
	Inserts      int   // insertions made
	BytesAdded   int64 // bytes inserted
	BytesTouched int64 // bytes of the files or 1 MiB segments that received an insertion
}

// Add adds o to s.
func (s *Summary) Add(o Summary) {
	s.Files += o.Files
	s.Bytes += o.Bytes
	s.Changed += o.Changed
	s.Inserts += o.Inserts
	s.BytesAdded += o.BytesAdded
	s.BytesTouched += o.BytesTouched
}

func (s Summary) String() string {
	return fmt.Sprintf("files=%d bytes=%d changed_files=%d inserts=%d bytes_added=%d bytes_touched=%d",
		s.Files, s.Bytes, s.Changed, s.Inserts, s.BytesAdded, s.BytesTouched)
}

// seeded returns a generator for one purpose ("random", "text", a path) under seed.
func seeded(seed uint64, purpose string) *rand.Rand {
	var k [32]byte
	copy(k[:8], strconv.FormatUint(seed, 16))
	copy(k[8:], purpose)
	if len(purpose) > 24 {
		h := fnv64(purpose)
		for i := range 8 {
			k[24+i] = byte(h >> (8 * i))
		}
	}
	return rand.New(rand.NewChaCha8(k))
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Generate writes size bytes into dir: half as random-NN.bin files of seeded random bytes,
// half as text-NN.txt files of generated prose, no file larger than fileSize.
func Generate(dir string, seed uint64, size, fileSize int64) (Summary, error) {
	var sum Summary
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sum, err
	}
	half := size / 2
	rnd := seeded(seed, "random")
	txt := newTextGen(seeded(seed, "text"))
	kinds := []struct {
		name string
		gen  func(w *bufio.Writer, n int64) error
	}{
		{"random-%02d.bin", func(w *bufio.Writer, n int64) error { return writeRandom(w, rnd, n) }},
		{"text-%02d.txt", txt.write},
	}
	for _, k := range kinds {
		kind, gen := k.name, k.gen
		left := half
		for i := 0; left > 0; i++ {
			n := min(left, fileSize)
			if err := writeFile(filepath.Join(dir, fmt.Sprintf(kind, i)), n, gen); err != nil {
				return sum, err
			}
			left -= n
			sum.Files++
			sum.Bytes += n
		}
	}
	return sum, nil
}

func writeFile(path string, n int64, gen func(*bufio.Writer, int64) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := gen(w, n); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func writeRandom(w *bufio.Writer, r *rand.Rand, n int64) error {
	var block [64 << 10]byte
	for n > 0 {
		b := block[:min(n, int64(len(block)))]
		for i := 0; i+8 <= len(b); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		for i := len(b) &^ 7; i < len(b); i++ {
			b[i] = byte(r.Uint32())
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

// textGen writes lines of words drawn with a Zipf distribution from a generated vocabulary,
// with numbers and punctuation: text that zstd compresses roughly 3:1, not to nothing.
type textGen struct {
	r     *rand.Rand
	words []string
	zipf  *rand.Zipf
}

func newTextGen(r *rand.Rand) *textGen {
	syll := []string{"ka", "ro", "mi", "ten", "sa", "lo", "ve", "dra", "qu", "is", "an", "po",
		"el", "tri", "un", "ba", "ex", "zo", "ha", "ne", "st", "or", "gi", "fa"}
	words := make([]string, 20000)
	for i := range words {
		n := 1 + r.IntN(4)
		w := ""
		for range n {
			w += syll[r.IntN(len(syll))]
		}
		words[i] = w
	}
	return &textGen{r: r, words: words, zipf: rand.NewZipf(r, 1.1, 2, uint64(len(words)-1))}
}

func (g *textGen) write(w *bufio.Writer, n int64) error {
	line := make([]byte, 0, 256)
	for n > 0 {
		line = line[:0]
		for k := 5 + g.r.IntN(12); k > 0; k-- {
			switch x := g.r.IntN(20); {
			case x == 0:
				line = strconv.AppendInt(line, int64(g.r.IntN(100000)), 10)
			default:
				line = append(line, g.words[g.zipf.Uint64()]...)
			}
			if g.r.IntN(8) == 0 {
				line = append(line, ",.;:"[g.r.IntN(4)])
			}
			line = append(line, ' ')
		}
		line[len(line)-1] = '\n'
		if int64(len(line)) > n {
			line = line[:n]
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		n -= int64(len(line))
	}
	return nil
}
