package mysql

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// The binary log, version 4 (MySQL 5.0 and later, every MariaDB): a file starts with
// binlogMagic, then events, each with a 19-byte little-endian header:
//
//	timestamp (4, seconds) | type (1) | server id (4) | event size (4, header included)
//	| next position (4: the offset after this event in the file) | flags (2)
//
// The first event is a Format Description event; its last 5 bytes are the checksum
// algorithm (1 byte, 1 = CRC32) and the checksum, and when CRC32 is on every event ends
// with the CRC32 (IEEE) of its other bytes. A file ends with a Rotate event (8-byte
// position, then the next file's name) or, after a shutdown, a Stop event.
var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

const (
	eventHeaderLen = 19
	maxEventSize   = 1 << 30 // max_allowed_packet's upper bound; anything larger is damage
)

// Event types the plugin reads.
const (
	eventStop              = 3
	eventRotate            = 4
	eventFormatDescription = 15
)

const checksumCRC32 = 1

// eventHeader is the fixed part of a binlog event.
type eventHeader struct {
	Time     uint32
	Type     uint8
	ServerID uint32
	Size     uint32
	NextPos  uint32
	Flags    uint16
}

func parseEventHeader(b []byte) eventHeader {
	return eventHeader{
		Time:     binary.LittleEndian.Uint32(b[0:]),
		Type:     b[4],
		ServerID: binary.LittleEndian.Uint32(b[5:]),
		Size:     binary.LittleEndian.Uint32(b[9:]),
		NextPos:  binary.LittleEndian.Uint32(b[13:]),
		Flags:    binary.LittleEndian.Uint16(b[17:]),
	}
}

// fileScanner follows one binlog file from its start, event by event, as its bytes
// arrive. It verifies the magic, the event framing, the positions and (when the file's
// Format Description says so) every event's CRC32.
type fileScanner struct {
	name     string
	off      uint64 // bytes of the file consumed: the magic and complete events
	checksum bool   // events end with a CRC32
	fde      bool   // the Format Description event was read
	next     string // the file named by a closing Rotate event (or the successor after a Stop)
	ended    bool   // a Rotate or Stop event ended the file
	serverID uint32 // server id of the Format Description event

	// Since the last resetTimes: the event timestamps seen (zero timestamps are skipped).
	first, last uint32
	events      int
}

func newFileScanner(name string) *fileScanner { return &fileScanner{name: name} }

// resetTimes starts a new batch of event times.
func (s *fileScanner) resetTimes() { s.first, s.last, s.events = 0, 0, 0 }

// feed reads b, the file's bytes from offset s.off on, and returns how many of them form
// complete events (the magic counts at offset 0). An incomplete event at the end is left
// for the next call. An error names the file and the offset of the bad event.
func (s *fileScanner) feed(b []byte) (int, error) {
	n := 0
	if s.off == 0 {
		if len(b) < len(binlogMagic) {
			if !bytes.HasPrefix(binlogMagic, b) {
				return 0, fmt.Errorf("%s: not a binary log (bad magic %x)", s.name, b)
			}
			return 0, nil
		}
		if !bytes.Equal(b[:4], binlogMagic) {
			return 0, fmt.Errorf("%s: not a binary log (bad magic %x)", s.name, b[:4])
		}
		n = 4
		s.off = 4
	}
	for len(b)-n >= eventHeaderLen {
		h := parseEventHeader(b[n:])
		at := s.off
		if s.ended {
			return n, fmt.Errorf("%s at %d: event of type %d after the file's closing event", s.name, at, h.Type)
		}
		if h.Size < eventHeaderLen || h.Size > maxEventSize {
			return n, fmt.Errorf("%s at %d: event size %d is not valid", s.name, at, h.Size)
		}
		if h.NextPos != 0 && uint64(h.NextPos) != (at+uint64(h.Size))&0xffffffff {
			return n, fmt.Errorf("%s at %d: event says the next one is at %d, but it is %d bytes long", s.name, at, h.NextPos, h.Size)
		}
		if uint64(len(b)-n) < uint64(h.Size) {
			break
		}
		ev := b[n : n+int(h.Size)]
		if err := s.event(at, h, ev); err != nil {
			return n, err
		}
		if h.Time != 0 {
			if s.first == 0 || h.Time < s.first {
				s.first = h.Time
			}
			if h.Time > s.last {
				s.last = h.Time
			}
		}
		s.events++
		n += int(h.Size)
		s.off += uint64(h.Size)
	}
	return n, nil
}

// event checks one complete event at offset at.
func (s *fileScanner) event(at uint64, h eventHeader, ev []byte) error {
	if !s.fde {
		if h.Type != eventFormatDescription {
			return fmt.Errorf("%s at %d: the first event is of type %d, not a format description", s.name, at, h.Type)
		}
		// binlog version (2) | server version (50) | create time (4) | header length (1)
		// | post-header lengths ... | checksum algorithm (1) | checksum (4)
		if len(ev) < eventHeaderLen+57+5 {
			return fmt.Errorf("%s at %d: format description event of %d bytes is too short", s.name, at, len(ev))
		}
		if v := binary.LittleEndian.Uint16(ev[eventHeaderLen:]); v != 4 {
			return fmt.Errorf("%s at %d: binary log version %d is not supported (want 4)", s.name, at, v)
		}
		if hl := ev[eventHeaderLen+56]; hl != eventHeaderLen {
			return fmt.Errorf("%s at %d: event header length %d is not supported (want %d)", s.name, at, hl, eventHeaderLen)
		}
		s.checksum = ev[len(ev)-5] == checksumCRC32
		s.fde = true
		s.serverID = h.ServerID
	}
	if s.checksum {
		body := ev[:len(ev)-4]
		want := binary.LittleEndian.Uint32(ev[len(ev)-4:])
		got := crc32.ChecksumIEEE(body)
		if h.Type == eventFormatDescription && got != want {
			// The server clears the "in use" flag (bit 0) of a file's Format Description
			// event when it sends it, without recomputing the checksum.
			c := append([]byte(nil), body...)
			c[17] |= 1
			got = crc32.ChecksumIEEE(c)
		}
		if got != want {
			return fmt.Errorf("%s at %d: event of type %d fails its CRC32 (stored %08x, computed %08x)", s.name, at, h.Type, want, got)
		}
	}
	switch h.Type {
	case eventRotate:
		end := len(ev)
		if s.checksum {
			end -= 4
		}
		if end < eventHeaderLen+8+1 {
			return fmt.Errorf("%s at %d: rotate event of %d bytes is too short", s.name, at, len(ev))
		}
		next := string(ev[eventHeaderLen+8 : end])
		if !validFileName(next) {
			return fmt.Errorf("%s at %d: rotate event names an invalid file %q", s.name, at, next)
		}
		s.next, s.ended = next, true
	case eventStop:
		next, ok := successor(s.name)
		if !ok {
			return fmt.Errorf("%s at %d: stop event in a file without a numbered name", s.name, at)
		}
		s.next, s.ended = next, true
	}
	return nil
}

// times returns the batch's first and last event times (zero if it had none).
func (s *fileScanner) times() (first, last time.Time) {
	if s.first == 0 {
		return time.Time{}, time.Time{}
	}
	return time.Unix(int64(s.first), 0).UTC(), time.Unix(int64(s.last), 0).UTC()
}

// validFileName reports whether name is a plain binlog file name: "<base>.<digits>".
func validFileName(name string) bool {
	_, _, ok := splitFileName(name)
	return ok
}

// splitFileName splits "mysql-bin.000042" into "mysql-bin" and 42.
func splitFileName(name string) (base string, seq uint64, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
		return "", 0, false
	}
	digits := name[i+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return name[:i], n, true
}

// successor returns the name of the file after name ("mysql-bin.000042" → "…000043").
func successor(name string) (string, bool) {
	base, n, ok := splitFileName(name)
	if !ok {
		return "", false
	}
	width := len(name) - len(base) - 1
	return fmt.Sprintf("%s.%0*d", base, width, n+1), true
}

// comparePos orders binlog positions: by file sequence number, then offset.
func comparePos(f1 string, p1 uint64, f2 string, p2 uint64) int {
	_, n1, _ := splitFileName(f1)
	_, n2, _ := splitFileName(f2)
	switch {
	case n1 < n2:
		return -1
	case n1 > n2:
		return 1
	case p1 < p2:
		return -1
	case p1 > p2:
		return 1
	}
	return 0
}
