package sqlite

import (
	"encoding/binary"
	"fmt"
	"time"
)

// A segment is the content of a sqlite-wal point: the frames of consecutive commits of one
// WAL generation, with the time Rewind saw each commit. Layout (integers big-endian):
//
//	magic "RWSQLW01"        8
//	page size               4
//	checkpoint sequence     4
//	salt1, salt2            4, 4
//	flags                   1 (bit 0: checksums over big-endian words; bit 1: no WAL header,
//	                           the segment follows a state held wholly in the database file)
//	start frame             4 (frames 1..start were shipped before)
//	start checksum          4, 4 (running checksum after the start frame)
//	commit count n          4
//	n × (frames 4, unix nanoseconds 8)
//	frames, exactly as in the -wal file (24-byte header + page each)
const (
	segmentMagic      = "RWSQLW01"
	segmentHeaderSize = 8 + 4 + 4 + 8 + 1 + 4 + 8 + 4
	maxSegmentCommits = 1 << 24
)

// segment is a decoded segment.
type segment struct {
	Start   position // position before the first frame (DBPages unknown: 0)
	Commits []segCommit
}

type segCommit struct {
	Time   time.Time
	N      uint32 // frames
	Pages  uint32 // database size after the commit
	Frames []byte // N frames
}

// End returns the position after the segment's last commit.
func (s *segment) End() position {
	p := s.Start
	for _, c := range s.Commits {
		p.Frame += c.N
		p.DBPages = c.Pages
		p.Sum = [2]uint32{binary.BigEndian.Uint32(c.Frames[len(c.Frames)-int(walFrameHeaderSize+p.PageSize)+16:]),
			binary.BigEndian.Uint32(c.Frames[len(c.Frames)-int(walFrameHeaderSize+p.PageSize)+20:])}
	}
	return p
}

func encodeSegment(start position, commits []commit, times []time.Time) []byte {
	size := segmentHeaderSize + 12*len(commits)
	for _, c := range commits {
		size += len(c.Frames)
	}
	b := make([]byte, 0, size)
	b = append(b, segmentMagic...)
	b = binary.BigEndian.AppendUint32(b, start.PageSize)
	b = binary.BigEndian.AppendUint32(b, start.Ckpt)
	b = binary.BigEndian.AppendUint32(b, start.Salt1)
	b = binary.BigEndian.AppendUint32(b, start.Salt2)
	var flags byte
	if start.BigEndian {
		flags |= 1
	}
	if !start.HasHeader {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, start.Frame)
	b = binary.BigEndian.AppendUint32(b, start.Sum[0])
	b = binary.BigEndian.AppendUint32(b, start.Sum[1])
	b = binary.BigEndian.AppendUint32(b, uint32(len(commits)))
	for i, c := range commits {
		b = binary.BigEndian.AppendUint32(b, c.N)
		b = binary.BigEndian.AppendUint64(b, uint64(times[i].UnixNano()))
	}
	for _, c := range commits {
		b = append(b, c.Frames...)
	}
	return b
}

// decodeSegment decodes and verifies a segment read from a vault: every frame must belong to
// the segment's generation, chain its checksum from the start checksum, and each commit must
// end with exactly one commit frame. Commit times must not go backwards.
func decodeSegment(b []byte) (*segment, error) {
	if len(b) < segmentHeaderSize || string(b[:8]) != segmentMagic {
		return nil, fmt.Errorf("not a SQLite WAL segment (bad magic or %d bytes)", len(b))
	}
	var s segment
	p := &s.Start
	p.PageSize = binary.BigEndian.Uint32(b[8:])
	p.Ckpt = binary.BigEndian.Uint32(b[12:])
	p.Salt1 = binary.BigEndian.Uint32(b[16:])
	p.Salt2 = binary.BigEndian.Uint32(b[20:])
	if b[24]&^3 != 0 {
		return nil, fmt.Errorf("segment: invalid flags %#x", b[24])
	}
	p.BigEndian = b[24]&1 != 0
	p.HasHeader = b[24]&2 == 0
	p.Frame = binary.BigEndian.Uint32(b[25:])
	p.Sum = [2]uint32{binary.BigEndian.Uint32(b[29:]), binary.BigEndian.Uint32(b[33:])}
	n := binary.BigEndian.Uint32(b[37:])
	if !validPageSize(p.PageSize) {
		return nil, fmt.Errorf("segment: invalid page size %d", p.PageSize)
	}
	if !p.HasHeader && (p.Frame != 0 || n != 0) {
		return nil, fmt.Errorf("segment: frames without a WAL header")
	}
	if n > maxSegmentCommits || uint64(len(b)-segmentHeaderSize) < uint64(n)*12 {
		return nil, fmt.Errorf("segment: %d commits do not fit in %d bytes", n, len(b))
	}
	fsz := uint64(walFrameHeaderSize + p.PageSize)
	rest := b[segmentHeaderSize+12*int(n):]
	var total uint64
	s.Commits = make([]segCommit, n)
	var last int64
	for i := range s.Commits {
		e := b[segmentHeaderSize+12*i:]
		c := &s.Commits[i]
		c.N = binary.BigEndian.Uint32(e)
		ns := int64(binary.BigEndian.Uint64(e[4:]))
		if c.N == 0 {
			return nil, fmt.Errorf("segment: commit %d has no frames", i)
		}
		if i > 0 && ns < last {
			return nil, fmt.Errorf("segment: commit %d is older than the one before", i)
		}
		last = ns
		c.Time = time.Unix(0, ns).UTC()
		total += uint64(c.N) * fsz
		if total > uint64(len(rest)) {
			return nil, fmt.Errorf("segment: frames of commit %d exceed the segment (%d bytes)", i, len(b))
		}
	}
	if total != uint64(len(rest)) {
		return nil, fmt.Errorf("segment: %d bytes of frames, commits account for %d", len(rest), total)
	}
	sum := p.Sum
	off := uint64(0)
	for i := range s.Commits {
		c := &s.Commits[i]
		c.Frames = rest[off : off+uint64(c.N)*fsz]
		for j := uint32(0); j < c.N; j++ {
			f := c.Frames[uint64(j)*fsz : uint64(j+1)*fsz]
			if binary.BigEndian.Uint32(f[8:]) != p.Salt1 || binary.BigEndian.Uint32(f[12:]) != p.Salt2 {
				return nil, fmt.Errorf("segment: frame %d of commit %d belongs to another WAL generation", j, i)
			}
			if binary.BigEndian.Uint32(f) == 0 {
				return nil, fmt.Errorf("segment: frame %d of commit %d has page number 0", j, i)
			}
			pages := binary.BigEndian.Uint32(f[4:])
			if (pages != 0) != (j == c.N-1) {
				return nil, fmt.Errorf("segment: commit %d: commit marker on frame %d of %d", i, j+1, c.N)
			}
			if pages != 0 {
				c.Pages = pages
			}
			sum = walChecksum(p.BigEndian, sum, f[:8])
			sum = walChecksum(p.BigEndian, sum, f[walFrameHeaderSize:])
			if sum[0] != binary.BigEndian.Uint32(f[16:]) || sum[1] != binary.BigEndian.Uint32(f[20:]) {
				return nil, fmt.Errorf("segment: frame %d of commit %d fails its checksum", j, i)
			}
		}
		off += uint64(c.N) * fsz
	}
	return &s, nil
}
