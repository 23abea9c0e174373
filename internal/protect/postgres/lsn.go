package postgres

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// LSN is a PostgreSQL write-ahead log position.
type LSN = pglogrepl.LSN

// ParseLSN parses an LSN written as PostgreSQL does ("16/B374D848").
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("LSN %q: want two hexadecimal numbers separated by a slash, like 0/16B3748", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("LSN %q: not hexadecimal", s)
	}
	return LSN(h<<32 | l), nil
}

// DefaultSegmentSize is PostgreSQL's default WAL segment size (bytes).
const DefaultSegmentSize = 16 << 20

// validSegmentSize reports whether n is a WAL segment size PostgreSQL allows (a power of two
// from 1 MiB to 1 GiB).
func validSegmentSize(n uint64) bool {
	return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0
}

// segStart returns the LSN where the segment holding lsn starts.
func segStart(lsn LSN, segSize uint64) LSN { return LSN(uint64(lsn) - uint64(lsn)%segSize) }

// SegmentName returns the file name of the WAL segment holding lsn on timeline tli.
func SegmentName(tli uint32, lsn LSN, segSize uint64) string {
	segno := uint64(lsn) / segSize
	perID := 0x100000000 / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, segno/perID, segno%perID)
}

// parseSegmentName parses a WAL segment file name into its timeline and start LSN.
func parseSegmentName(name string, segSize uint64) (tli uint32, start LSN, ok bool) {
	if len(name) != 24 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(name[0:8], 16, 32)
	log, err2 := strconv.ParseUint(name[8:16], 16, 32)
	seg, err3 := strconv.ParseUint(name[16:24], 16, 32)
	perID := 0x100000000 / segSize
	if err1 != nil || err2 != nil || err3 != nil || t == 0 || seg >= perID || strings.ToUpper(name) != name {
		return 0, 0, false
	}
	return uint32(t), LSN((log*perID + seg) * segSize), true
}

// historyName returns the name of timeline tli's history file.
func historyName(tli uint32) string { return fmt.Sprintf("%08X.history", tli) }

// parseHistoryName parses "0000000A.history".
func parseHistoryName(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(name, ".history")
	if !ok || len(base) != 8 || strings.ToUpper(base) != base {
		return 0, false
	}
	t, err := strconv.ParseUint(base, 16, 32)
	return uint32(t), err == nil && t > 0
}

// isBackupHistoryName reports whether name is a backup history file
// ("000000010000000000000002.00000028.backup").
func isBackupHistoryName(name string) bool {
	seg, rest, ok := strings.Cut(name, ".")
	off, ok2 := strings.CutSuffix(rest, ".backup")
	return ok && ok2 && len(seg) == 24 && len(off) == 8 && isUpperHex(seg) && isUpperHex(off)
}

func isUpperHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// Page header layout of a WAL segment's first page (XLogLongPageHeaderData), in the
// server's byte order (little-endian on every platform Rewind supports).
const (
	xlpMagicOffset     = 0
	xlpInfoOffset      = 2
	xlpTLIOffset       = 4
	xlpPageAddrOffset  = 8
	xlpSysIDOffset     = 24
	xlpSegSizeOffset   = 32
	xlpBlockSizeOffset = 36
	longHeaderSize     = 40
	xlpLongHeader      = 0x0002
)

// segmentHeader is what the long page header at the start of a WAL segment says.
type segmentHeader struct {
	Magic     uint16
	TLI       uint32
	PageAddr  LSN
	SystemID  uint64
	SegSize   uint32
	BlockSize uint32
}

// parseSegmentHeader decodes the long page header at the start of a WAL segment.
func parseSegmentHeader(b []byte) (segmentHeader, error) {
	if len(b) < longHeaderSize {
		return segmentHeader{}, fmt.Errorf("%d bytes is too short for a WAL segment header", len(b))
	}
	le := binary.LittleEndian
	if le.Uint16(b[xlpInfoOffset:])&xlpLongHeader == 0 {
		return segmentHeader{}, fmt.Errorf("the first page has no long header (not the start of a WAL segment)")
	}
	h := segmentHeader{
		Magic:     le.Uint16(b[xlpMagicOffset:]),
		TLI:       le.Uint32(b[xlpTLIOffset:]),
		PageAddr:  LSN(le.Uint64(b[xlpPageAddrOffset:])),
		SystemID:  le.Uint64(b[xlpSysIDOffset:]),
		SegSize:   le.Uint32(b[xlpSegSizeOffset:]),
		BlockSize: le.Uint32(b[xlpBlockSizeOffset:]),
	}
	if h.Magic < 0xD000 || h.Magic > 0xD1FF {
		return h, fmt.Errorf("page magic %#04x is not a WAL page magic", h.Magic)
	}
	if !validSegmentSize(uint64(h.SegSize)) {
		return h, fmt.Errorf("segment size %d in the header is not a valid WAL segment size", h.SegSize)
	}
	if h.BlockSize == 0 || h.BlockSize&(h.BlockSize-1) != 0 || h.BlockSize > 1<<16 {
		return h, fmt.Errorf("block size %d in the header is not valid", h.BlockSize)
	}
	return h, nil
}

// parseSize parses a size as SHOW prints it ("16MB", "1GB", "8192", "16kB").
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suf string
		m   uint64
	}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %v", s, err)
	}
	return n * mult, nil
}
