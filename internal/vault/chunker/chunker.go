package chunker

import (
	"encoding/binary"
	"io"
	"math/bits"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/zeebo/blake3"
)

// Size limits enforced by Params.Validate, in bytes.
const (
	// LimitMin is the smallest allowed Params.Min. It is also the width of the rolling-hash
	// window: a boundary depends only on the LimitMin bytes before it.
	LimitMin = 64
	// LimitAvg is the smallest allowed Params.Avg.
	LimitAvg = 256
	// LimitMax is the largest allowed Params.Max; the chunker buffers up to 1.5 × Max.
	LimitMax = 256 << 20
)

// gearContext is the BLAKE3 key-derivation context for the gear table. Changing it (or the
// derivation below) changes every chunk boundary of every vault: it is part of the vault
// format, so a new derivation needs a new context string and a format version.
const gearContext = "rewind chunker gear table v1"

// window is the number of bytes hashed before the first candidate boundary of a chunk, so
// that every candidate boundary sees a full window of LimitMin bytes.
const window = LimitMin

// Params are the chunk size bounds, in bytes. Avg must be a power of two and
// LimitMin <= Min < Avg < Max <= LimitMax. Every chunk but the last of a stream is at least
// Min+1 and at most Max bytes long; on random data the mean chunk size is close to Avg.
type Params struct {
	Min, Avg, Max int
}

// DefaultParams are the chunk size bounds new vaults use.
var DefaultParams = Params{Min: 512 << 10, Avg: 1 << 20, Max: 8 << 20}

// Validate reports whether p can be used, as an errs.Invalid error naming the bad field.
func (p Params) Validate() error {
	const op = "chunker.Params"
	hint := "use chunker.DefaultParams, or sizes with Avg a power of two and Min < Avg < Max"
	switch {
	case p.Avg < LimitAvg || p.Avg > LimitMax/2:
		return errs.Errorf(op, errs.Invalid, "average chunk size %d is out of range [%d, %d]",
			p.Avg, LimitAvg, LimitMax/2).WithHint(hint)
	case p.Avg&(p.Avg-1) != 0:
		return errs.Errorf(op, errs.Invalid, "average chunk size %d is not a power of two", p.Avg).
			WithHint(hint)
	case p.Min < LimitMin:
		return errs.Errorf(op, errs.Invalid, "minimum chunk size %d is below %d", p.Min, LimitMin).
			WithHint(hint)
	case p.Min >= p.Avg:
		return errs.Errorf(op, errs.Invalid, "minimum chunk size %d is not below the average %d",
			p.Min, p.Avg).WithHint(hint)
	case p.Max <= p.Avg:
		return errs.Errorf(op, errs.Invalid, "maximum chunk size %d is not above the average %d",
			p.Max, p.Avg).WithHint(hint)
	case p.Max > LimitMax:
		return errs.Errorf(op, errs.Invalid, "maximum chunk size %d is above %d", p.Max, LimitMax).
			WithHint(hint)
	}
	return nil
}

// GearTable returns the 256 gear values derived from a vault's chunker key: the first 2048
// bytes of the BLAKE3 key-derivation output for the context "rewind chunker gear table v1"
// and the key, read as little-endian 64-bit words. It is a pure function of key.
func GearTable(key [32]byte) [256]uint64 {
	var raw [256 * 8]byte
	h := blake3.NewDeriveKey(gearContext)
	_, _ = h.Write(key[:]) // blake3.Hasher.Write never fails
	_, _ = h.Digest().Read(raw[:])
	var g [256]uint64
	for i := range g {
		g[i] = binary.LittleEndian.Uint64(raw[i*8:])
	}
	return g
}

// Chunk is one content-defined piece of the stream.
type Chunk struct {
	Start  uint64 // offset of the first byte in the stream
	Length int    // number of bytes, len(Data)
	Data   []byte // the bytes, in the buffer passed to Next (or a larger one it allocated)
}

// Chunker cuts the stream read from an io.Reader into chunks. It is not safe for concurrent
// use; use one Chunker per goroutine and Reset it for the next stream.
type Chunker struct {
	rd     io.Reader
	p      Params
	err    error // sticky: invalid parameters or a read error
	gear   [256]uint64
	gearLS [256]uint64 // gear values shifted left by one, for the two-byte step
	maskS  uint64      // strict mask, used before the normal point
	maskL  uint64      // loose mask, used after the normal point
	normal int         // chunk length at which the loose mask takes over

	buf      []byte // buf[pos:end] is read but not yet emitted
	pos, end int
	eof      bool
	offset   uint64 // stream offset of buf[pos]
}

// initialBuf is the first buffer allocation, so short streams do not allocate 1.5 × Max.
const initialBuf = 64 << 10

// New returns a Chunker reading rd, with boundaries keyed by key. If p is not valid the
// first call to Next returns the error from p.Validate.
func New(rd io.Reader, key [32]byte, p Params) *Chunker {
	c := &Chunker{p: p}
	if err := p.Validate(); err != nil {
		c.err = err
		return c
	}
	c.gear = GearTable(key)
	for i, v := range c.gear {
		c.gearLS[i] = v << 1
	}
	avgBits := bits.TrailingZeros(uint(p.Avg))
	// Normalized chunking level 2: the strict mask has two bits more than log2(Avg), the
	// loose one two fewer. The masks use the top bits of the hash (below bit 63, which the
	// two-byte step shifts out), since in a gear hash bit k depends only on the last k+1
	// bytes.
	c.maskS = topMask(avgBits + 2)
	c.maskL = topMask(avgBits - 2)
	// Boundaries are only looked for from Min on, which alone would push the mean chunk
	// size above Avg; moving the normal point down by Min/2 brings the mean on random data
	// back close to Avg (about 0.98 Avg for Min = Avg/2; TestAverageSize checks it).
	c.normal = max(p.Avg-p.Min/2, p.Min)
	c.Reset(rd)
	return c
}

// topMask returns n one bits ending at bit 62.
func topMask(n int) uint64 {
	return (uint64(1)<<n - 1) << (63 - n)
}

// Reset makes c chunk the stream read from rd, keeping its key, parameters and buffer.
func (c *Chunker) Reset(rd io.Reader) {
	c.rd = rd
	c.pos, c.end = 0, 0
	c.eof = false
	c.offset = 0
	if c.err != nil && c.p.Validate() == nil {
		c.err = nil // forget a read error from the previous stream
	}
}

// Next returns the next chunk. Its Data is buf[:Length] when buf has the capacity, otherwise
// a new slice; a buffer of capacity Params.Max never needs to grow. The caller owns the
// returned bytes and may pass the same buffer to the following call. After the last chunk
// Next returns io.EOF (at once for an empty stream). A read error from the reader is
// returned, wrapped, by the call that needed more input and by every later call; chunks
// returned before it are correct. Invalid parameters give an errs.Invalid error.
func (c *Chunker) Next(buf []byte) (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	if c.rd == nil {
		return Chunk{}, errs.Errorf("chunker.Next", errs.Invalid, "no reader to chunk").
			WithHint("pass an io.Reader to chunker.New or Reset")
	}
	if c.end-c.pos < c.p.Max && !c.eof {
		if err := c.fill(); err != nil {
			c.err = err
			return Chunk{}, err
		}
	}
	avail := c.buf[c.pos:c.end]
	if len(avail) == 0 {
		return Chunk{}, io.EOF
	}
	if len(avail) > c.p.Max {
		avail = avail[:c.p.Max]
	}
	n := c.cut(avail)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	copy(buf, avail)
	ch := Chunk{Start: c.offset, Length: n, Data: buf}
	c.pos += n
	c.offset += uint64(n)
	return ch, nil
}

// maxEmptyReads is how many (0, nil) reads in a row fill tolerates before giving up.
const maxEmptyReads = 100

// fill moves the unread bytes to the front of the buffer and reads until the buffer is full
// or the stream ends, growing the buffer up to one and a half times Max (enough for a
// maximal chunk plus read-ahead; each refill moves at most Max bytes).
func (c *Chunker) fill() error {
	if c.pos > 0 {
		c.end = copy(c.buf, c.buf[c.pos:c.end])
		c.pos = 0
	}
	limit := c.p.Max + c.p.Max/2
	empty := 0
	for !c.eof {
		if c.end == len(c.buf) {
			if len(c.buf) >= limit {
				return nil
			}
			nb := make([]byte, min(max(2*len(c.buf), initialBuf), limit))
			copy(nb, c.buf[:c.end])
			c.buf = nb
		}
		n, err := c.rd.Read(c.buf[c.end:])
		c.end += n
		switch {
		case err == io.EOF:
			c.eof = true
		case err != nil:
			return errs.Errorf("chunker.Next", errs.Other, "read input at byte %d: %w",
				c.offset+uint64(c.end), err)
		case n == 0:
			empty++
			if empty >= maxEmptyReads {
				return errs.Errorf("chunker.Next", errs.Other, "read input at byte %d: %w",
					c.offset+uint64(c.end), io.ErrNoProgress)
			}
		default:
			empty = 0
		}
	}
	return nil
}

// cut returns the length of the chunk at the start of d, where len(d) <= Max and d is
// either Max bytes long or the rest of the stream.
func (c *Chunker) cut(d []byte) int {
	n := len(d)
	if n <= c.p.Min {
		return n
	}
	var h uint64
	for _, b := range d[c.p.Min-window : c.p.Min] {
		h = h<<1 + c.gear[b]
	}
	i, h, found := scan(d[:min(c.normal, n)], c.p.Min, h, &c.gear, &c.gearLS, c.maskS)
	if found {
		return i
	}
	i, _, found = scan(d, i, h, &c.gear, &c.gearLS, c.maskL)
	if found {
		return i
	}
	return n
}

// scan rolls the gear hash h over d[i:], two bytes per step, and returns the length of the
// chunk ending at the first boundary (a hash with no bit of mask set), or len(d) and false.
// Both steps compute the same hashes as the one-byte recurrence h = h<<1 + gear[b]: the
// first step keeps its hash shifted left by one (x = h<<2 + gear[b]<<1) and tests it
// against mask<<1, which is why masks never use bit 63.
func scan(d []byte, i int, h uint64, gear, gearLS *[256]uint64, mask uint64) (int, uint64, bool) {
	maskLS := mask << 1
	i = max(i, 0)
	for ; i < len(d)-1; i += 2 {
		x := h<<2 + gearLS[d[i]]
		h = x + gear[d[i+1]]
		if x&maskLS == 0 {
			return i + 1, h, true
		}
		if h&mask == 0 {
			return i + 2, h, true
		}
	}
	if i < len(d) {
		h = h<<1 + gear[d[i]]
		i++
		if h&mask == 0 {
			return i, h, true
		}
	}
	return i, h, false
}
