package sqlite

import (
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// frames builds n valid frames of one transaction after pos (page size 512).
func testFrames(pos position, pgnos []uint32) (commit, position) {
	ps := pos.PageSize
	var c commit
	for i, pg := range pgnos {
		f := make([]byte, walFrameHeaderSize+ps)
		binary.BigEndian.PutUint32(f[0:], pg)
		if i == len(pgnos)-1 {
			binary.BigEndian.PutUint32(f[4:], 7)
		}
		binary.BigEndian.PutUint32(f[8:], pos.Salt1)
		binary.BigEndian.PutUint32(f[12:], pos.Salt2)
		for j := walFrameHeaderSize; j < len(f); j++ {
			f[j] = byte(int(pg) + j)
		}
		s := walChecksum(pos.BigEndian, pos.Sum, f[:8])
		s = walChecksum(pos.BigEndian, s, f[walFrameHeaderSize:])
		binary.BigEndian.PutUint32(f[16:], s[0])
		binary.BigEndian.PutUint32(f[20:], s[1])
		pos.Sum = s
		pos.Frame++
		c.Frames = append(c.Frames, f...)
		c.N++
	}
	c.Pages = 7
	pos.DBPages = 7
	return c, pos
}

func TestSegmentRoundTrip(t *testing.T) {
	start := position{HasHeader: true, PageSize: 512, Ckpt: 3, Salt1: 11, Salt2: 22, Frame: 5, Sum: [2]uint32{1, 2}}
	c1, p1 := testFrames(start, []uint32{1, 2, 3})
	c2, p2 := testFrames(p1, []uint32{7})
	t0 := time.Unix(100, 5).UTC()
	b := encodeSegment(start, []commit{c1, c2}, []time.Time{t0, t0.Add(time.Second)})
	s, err := decodeSegment(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Start != start || len(s.Commits) != 2 || s.Commits[1].N != 1 || !s.Commits[1].Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("decoded %+v", s)
	}
	if e := s.End(); e.Frame != p2.Frame || e.Sum != p2.Sum {
		t.Fatalf("end %+v, want %+v", e, p2)
	}
	for _, tc := range []struct {
		name string
		mut  func([]byte)
	}{
		{"page byte", func(b []byte) { b[len(b)-1] ^= 1 }},
		{"magic", func(b []byte) { b[0] = 'X' }},
		{"salt", func(b []byte) { b[segmentHeaderSize+24+8] ^= 1 }},
		{"frame count", func(b []byte) { b[segmentHeaderSize+3] = 2 }},
		{"start checksum", func(b []byte) { b[30] ^= 1 }},
	} {
		bad := append([]byte(nil), b...)
		tc.mut(bad)
		if _, err := decodeSegment(bad); err == nil {
			t.Errorf("%s: corrupted segment accepted", tc.name)
		}
	}
}

func TestReadCommitsStopsAtTornFrame(t *testing.T) {
	h := position{HasHeader: true, PageSize: 512, Salt1: 1, Salt2: 2}
	c1, p1 := testFrames(h, []uint32{1, 2})
	c2, _ := testFrames(p1, []uint32{3, 4})
	data := append(append([]byte(nil), c1.Frames...), c2.Frames[:len(c2.Frames)-10]...)
	cs, end, err := readCommits(bytesReader(data), h, 1<<20)
	if err != nil || len(cs) != 1 || end != p1 {
		t.Fatalf("got %d commits, end %+v, err %v; want 1 commit ending %+v", len(cs), end, err, p1)
	}
}

func FuzzDecodeSegment(f *testing.F) {
	start := position{HasHeader: true, PageSize: 512, Salt1: 1, Salt2: 2}
	c, _ := testFrames(start, []uint32{1, 2})
	f.Add(encodeSegment(start, []commit{c}, []time.Time{time.Unix(1, 0)}))
	f.Add(encodeSegment(position{PageSize: 4096}, nil, nil))
	f.Add([]byte("RWSQLW01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSegment(b)
		if err != nil {
			return
		}
		fsz := int(walFrameHeaderSize + s.Start.PageSize)
		for _, c := range s.Commits {
			if len(c.Frames) != int(c.N)*fsz || c.Pages == 0 {
				t.Fatalf("inconsistent commit %+v", c.N)
			}
		}
		_ = s.End()
	})
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }
