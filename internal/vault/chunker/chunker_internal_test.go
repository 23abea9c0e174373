package chunker

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// referenceCut is FastCDC as written in the paper, one byte at a time, with this package's
// masks, window and normal point. The two-byte scan must agree with it everywhere.
func (c *Chunker) referenceCut(d []byte) int {
	n := len(d)
	if n <= c.p.Min {
		return n
	}
	var h uint64
	for i := c.p.Min - window; i < n; i++ {
		h = h<<1 + c.gear[d[i]]
		if i < c.p.Min {
			continue
		}
		mask := c.maskL
		if i < c.normal {
			mask = c.maskS
		}
		if h&mask == 0 {
			return i + 1
		}
	}
	return n
}

func TestCutMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	params := []Params{
		{Min: 64, Avg: 256, Max: 257},
		{Min: 64, Avg: 256, Max: 1000},
		{Min: 65, Avg: 512, Max: 2049},
		{Min: 333, Avg: 1024, Max: 4097},
		{Min: 1000, Avg: 1024, Max: 1500},
	}
	for _, p := range params {
		t.Run(fmt.Sprintf("%d-%d-%d", p.Min, p.Avg, p.Max), func(t *testing.T) {
			c := New(nil, [32]byte{byte(p.Min)}, p)
			if c.err != nil {
				t.Fatal(c.err)
			}
			d := make([]byte, p.Max)
			cuts := map[int]int{}
			for range 20000 {
				for i := range d {
					d[i] = byte(r.Uint32())
				}
				n := r.IntN(p.Max + 1)
				got, want := c.cut(d[:n]), c.referenceCut(d[:n])
				if got != want {
					t.Fatalf("cut of %d bytes = %d, reference = %d", n, got, want)
				}
				cuts[got%2]++
			}
			if cuts[0] == 0 || cuts[1] == 0 {
				t.Fatalf("cuts only at one parity (%v): both steps of the scan must be exercised", cuts)
			}
		})
	}
}

func TestMasks(t *testing.T) {
	c := New(nil, [32]byte{}, DefaultParams)
	for _, tt := range []struct {
		mask uint64
		ones int
	}{{c.maskS, 22}, {c.maskL, 18}} {
		n := 0
		for m := tt.mask; m != 0; m &= m - 1 {
			n++
		}
		if n != tt.ones || tt.mask>>63 != 0 || tt.mask&(1<<62) == 0 {
			t.Errorf("mask %064b: %d ones, want %d ending at bit 62", tt.mask, n, tt.ones)
		}
	}
}

// BenchmarkCut measures the boundary scan alone, without reading or copying.
func BenchmarkCut(b *testing.B) {
	c := New(nil, [32]byte{1}, DefaultParams)
	data := make([]byte, 64<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for d := data; len(d) > 0; {
			n := c.cut(d[:min(len(d), DefaultParams.Max)])
			d = d[n:]
		}
	}
}
