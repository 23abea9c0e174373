package redis

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"strconv"
)

// crcTable is Redis's CRC-64 (Jones polynomial, reflected, no final xor), for RDB trailers.
var crcTable = crc64.MakeTable(0x95ac9329ac4bc9b5)

// RDBInfo describes a verified RDB payload.
type RDBInfo struct {
	Version  int    // RDB format version from the header ("REDIS0011" is 11)
	Size     int64  // bytes
	Checksum uint64 // the trailer's CRC-64 (0: the server had rdbchecksum disabled)
}

// Verifier checks an RDB payload written to it in any number of pieces: the "REDIS" magic and
// four-digit version, then (version 5 and later) that the last 8 bytes are the CRC-64 of all
// bytes before them. It never holds more than 8 bytes of the payload.
type Verifier struct {
	head [9]byte
	n    int64
	crc  uint64  // raw CRC of the bytes before tail
	tail [8]byte // the last 8 bytes seen
}

// Write feeds bytes; it never fails.
func (v *Verifier) Write(p []byte) (int, error) {
	for i := 0; i < len(p) && v.n+int64(i) < 9; i++ {
		v.head[v.n+int64(i)] = p[i]
	}
	total := len(p)
	// Bytes leaving the 8-byte tail window go into the CRC.
	keep := min(int64(8), v.n)
	if len(p) >= 8 {
		v.crc = update(v.crc, v.tail[8-keep:])
		v.crc = update(v.crc, p[:len(p)-8])
		copy(v.tail[:], p[len(p)-8:])
	} else {
		all := append(append([]byte(nil), v.tail[8-keep:]...), p...)
		if len(all) > 8 {
			v.crc = update(v.crc, all[:len(all)-8])
			all = all[len(all)-8:]
		}
		copy(v.tail[8-len(all):], all)
	}
	v.n += int64(total)
	return total, nil
}

func update(crc uint64, p []byte) uint64 {
	if len(p) == 0 {
		return crc
	}
	return ^crc64.Update(^crc, crcTable, p)
}

// Finish returns what was verified, or an error describing the first problem.
func (v *Verifier) Finish() (RDBInfo, error) {
	info := RDBInfo{Size: v.n}
	if v.n < 9 || string(v.head[:5]) != "REDIS" {
		return info, fmt.Errorf("not an RDB file: no REDIS header")
	}
	ver, err := strconv.Atoi(string(v.head[5:9]))
	if err != nil || ver < 1 {
		return info, fmt.Errorf("RDB header has an invalid version %q", v.head[5:9])
	}
	info.Version = ver
	if ver < 5 {
		return info, nil
	}
	if v.n < 9+1+8 {
		return info, fmt.Errorf("RDB of %d bytes is too short for its EOF marker and checksum", v.n)
	}
	info.Checksum = binary.LittleEndian.Uint64(v.tail[:])
	if info.Checksum == 0 {
		return info, nil
	}
	if info.Checksum != v.crc {
		return info, fmt.Errorf("RDB checksum mismatch: trailer %016x, content %016x", info.Checksum, v.crc)
	}
	return info, nil
}

// VerifyRDB checks a whole RDB payload (see Verifier).
func VerifyRDB(b []byte) (RDBInfo, error) {
	var v Verifier
	v.Write(b)
	return v.Finish()
}
