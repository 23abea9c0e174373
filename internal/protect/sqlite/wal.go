package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SQLite WAL file layout (https://www.sqlite.org/fileformat2.html#walformat): a 32-byte
// header, then frames of a 24-byte header and one page. All header integers are big-endian.
const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
	walMagicLE         = 0x377f0682 // checksums over little-endian words
	walMagicBE         = 0x377f0683 // checksums over big-endian words
	walVersion         = 3007000
)

// walHeader is the decoded header of a -wal file.
type walHeader struct {
	BigEndian bool // checksum word order (from the magic)
	PageSize  uint32
	Ckpt      uint32 // checkpoint sequence number
	Salt1     uint32
	Salt2     uint32
	Sum       [2]uint32 // checksum of the first 24 bytes
}

var errNoWAL = errors.New("no valid WAL header")

func validPageSize(n uint32) bool { return n >= 512 && n <= 65536 && n&(n-1) == 0 }

// parseWALHeader decodes and verifies a WAL header. It returns errNoWAL (wrapped) when b is
// not a valid header: a file being (re)initialised or one that was never written.
func parseWALHeader(b []byte) (walHeader, error) {
	var h walHeader
	if len(b) < walHeaderSize {
		return h, fmt.Errorf("%w: %d bytes", errNoWAL, len(b))
	}
	switch binary.BigEndian.Uint32(b[0:]) {
	case walMagicLE:
	case walMagicBE:
		h.BigEndian = true
	default:
		return h, fmt.Errorf("%w: bad magic %#x", errNoWAL, binary.BigEndian.Uint32(b[0:]))
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != walVersion {
		return h, fmt.Errorf("%w: unsupported WAL version %d", errNoWAL, v)
	}
	h.PageSize = binary.BigEndian.Uint32(b[8:])
	if !validPageSize(h.PageSize) {
		return h, fmt.Errorf("%w: invalid page size %d", errNoWAL, h.PageSize)
	}
	h.Ckpt = binary.BigEndian.Uint32(b[12:])
	h.Salt1 = binary.BigEndian.Uint32(b[16:])
	h.Salt2 = binary.BigEndian.Uint32(b[20:])
	sum := walChecksum(h.BigEndian, [2]uint32{}, b[:24])
	if sum[0] != binary.BigEndian.Uint32(b[24:]) || sum[1] != binary.BigEndian.Uint32(b[28:]) {
		return h, fmt.Errorf("%w: header checksum mismatch", errNoWAL)
	}
	h.Sum = sum
	return h, nil
}

// walChecksum continues SQLite's WAL checksum over b (a multiple of 8 bytes).
func walChecksum(bigEndian bool, s [2]uint32, b []byte) [2]uint32 {
	s0, s1 := s[0], s[1]
	if bigEndian {
		for i := 0; i+8 <= len(b); i += 8 {
			s0 += binary.BigEndian.Uint32(b[i:]) + s1
			s1 += binary.BigEndian.Uint32(b[i+4:]) + s0
		}
	} else {
		for i := 0; i+8 <= len(b); i += 8 {
			s0 += binary.LittleEndian.Uint32(b[i:]) + s1
			s1 += binary.LittleEndian.Uint32(b[i+4:]) + s0
		}
	}
	return [2]uint32{s0, s1}
}

// position is a point in a WAL's history: frames 1..Frame of the generation identified by
// (Ckpt, Salt1, Salt2) are accounted for; Sum is the running checksum after frame Frame
// (the header checksum when Frame is 0). A zero Salt1, Salt2 and Ckpt with HasHeader false
// means the WAL had no valid header (everything was in the database file).
type position struct {
	HasHeader bool
	BigEndian bool
	PageSize  uint32
	Ckpt      uint32
	Salt1     uint32
	Salt2     uint32
	Frame     uint32
	Sum       [2]uint32
	DBPages   uint32 // database size in pages at this position
}

func (p position) sameGeneration(h walHeader) bool {
	return p.HasHeader && p.Ckpt == h.Ckpt && p.Salt1 == h.Salt1 && p.Salt2 == h.Salt2 && p.BigEndian == h.BigEndian
}

func startOf(h walHeader, dbPages uint32) position {
	return position{HasHeader: true, BigEndian: h.BigEndian, PageSize: h.PageSize, Ckpt: h.Ckpt,
		Salt1: h.Salt1, Salt2: h.Salt2, Sum: h.Sum, DBPages: dbPages}
}

// commit is one transaction read from the WAL: its frames (24-byte header and page each,
// exactly as in the -wal file) ending with the commit frame.
type commit struct {
	Frames []byte
	N      uint32 // number of frames
	Pages  uint32 // database size in pages after the commit
}

// frameAt returns the offset of frame n (1-based) in a WAL of page size ps.
func frameAt(n, ps uint32) int64 {
	return walHeaderSize + int64(n-1)*int64(walFrameHeaderSize+ps)
}

// readCommits reads complete transactions that follow pos in the WAL read by r (positioned
// at frame pos.Frame+1), stopping at the first frame that is missing, torn, of another
// generation or whose checksum does not chain, and after maxBytes of frames (at a commit).
// It returns the commits and the position after the last one. Frames after the last commit
// frame are not consumed: they belong to a transaction still being written.
func readCommits(r io.Reader, pos position, maxBytes int) ([]commit, position, error) {
	ps := pos.PageSize
	fsz := int(walFrameHeaderSize + ps)
	var out []commit
	var cur []byte
	var curN uint32
	sum := pos.Sum
	frame := pos.Frame
	buf := make([]byte, fsz)
	total := 0
	for total < maxBytes {
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return out, pos, err
		}
		if binary.BigEndian.Uint32(buf[8:]) != pos.Salt1 || binary.BigEndian.Uint32(buf[12:]) != pos.Salt2 {
			break
		}
		pgno := binary.BigEndian.Uint32(buf[0:])
		if pgno == 0 {
			break
		}
		s := walChecksum(pos.BigEndian, sum, buf[:8])
		s = walChecksum(pos.BigEndian, s, buf[walFrameHeaderSize:])
		if s[0] != binary.BigEndian.Uint32(buf[16:]) || s[1] != binary.BigEndian.Uint32(buf[20:]) {
			break
		}
		sum = s
		frame++
		cur = append(cur, buf...)
		curN++
		if pages := binary.BigEndian.Uint32(buf[4:]); pages != 0 {
			out = append(out, commit{Frames: cur, N: curN, Pages: pages})
			total += len(cur)
			cur, curN = nil, 0
			pos.Frame, pos.Sum, pos.DBPages = frame, sum, pages
		}
	}
	return out, pos, nil
}
