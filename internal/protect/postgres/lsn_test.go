package postgres_test

import (
	"encoding/binary"
	"testing"

	"github.com/rewind-dr/rewind/internal/protect/postgres"
)

func TestParseLSN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want postgres.LSN
		ok   bool
	}{
		{"0/0", 0, true},
		{"16/B374D848", 0x16B374D848, true},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFFFFFFFFFF, true},
		{"0/16b3748", 0x16B3748, true},
		{"", 0, false},
		{"1", 0, false},
		{"1/", 0, false},
		{"/1", 0, false},
		{"G/1", 0, false},
		{"100000000/0", 0, false},
	} {
		got, err := postgres.ParseLSN(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSegmentName(t *testing.T) {
	for _, tc := range []struct {
		tli  uint32
		lsn  postgres.LSN
		seg  uint64
		want string
	}{
		{1, 0x2000028, 16 << 20, "000000010000000000000002"},
		{1, 0x1_FF000000, 16 << 20, "0000000100000001000000FF"},
		{2, 0x1_00000000, 16 << 20, "000000020000000100000000"},
		{3, 0x2_40000000, 1 << 30, "000000030000000200000001"},
		{1, 0x100000, 1 << 20, "000000010000000000000001"},
	} {
		if got := postgres.SegmentName(tc.tli, tc.lsn, tc.seg); got != tc.want {
			t.Errorf("SegmentName(%d, %s, %d) = %s, want %s", tc.tli, tc.lsn, tc.seg, got, tc.want)
		}
	}
}

func TestDefaultSlot(t *testing.T) {
	for in, want := range map[string]string{"orders-db": "rewind_orders_db", "Pg.Main": "rewind_pg_main"} {
		if got := postgres.DefaultSlot(in); got != want {
			t.Errorf("DefaultSlot(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseSegmentHeader checks that the header decoder never panics and that what it
// accepts is self-consistent.
func FuzzParseSegmentHeader(f *testing.F) {
	h := make([]byte, 64)
	binary.LittleEndian.PutUint16(h[0:], 0xD110)
	binary.LittleEndian.PutUint16(h[2:], 0x0002)
	binary.LittleEndian.PutUint32(h[4:], 1)
	binary.LittleEndian.PutUint64(h[24:], 7123456789)
	binary.LittleEndian.PutUint32(h[32:], 16<<20)
	binary.LittleEndian.PutUint32(h[36:], 8192)
	f.Add(h)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := postgres.ParseSegmentHeaderForTest(b)
		if err != nil {
			return
		}
		if got.SegSize < 1<<20 || got.SegSize > 1<<30 || got.SegSize&(got.SegSize-1) != 0 {
			t.Fatalf("accepted segment size %d", got.SegSize)
		}
	})
}

// FuzzParseHistory checks the timeline history decoder on arbitrary bytes.
func FuzzParseHistory(f *testing.F) {
	f.Add([]byte("1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\tat restore point \"x\"\n"))
	f.Add([]byte("# comment\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := postgres.ParseHistoryForTest(b)
		if err != nil {
			return
		}
		for i := 1; i < len(es); i++ {
			if es[i].TLI <= es[i-1].TLI || es[i].Switch < es[i-1].Switch {
				t.Fatalf("accepted out-of-order history %v", es)
			}
		}
	})
}
