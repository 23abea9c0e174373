package mysql

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
)

// event builds a binlog event at offset at; crc appends the CRC32 trailer.
func event(at uint32, ts uint32, typ byte, body []byte, crc bool) []byte {
	size := eventHeaderLen + len(body)
	if crc {
		size += 4
	}
	b := make([]byte, eventHeaderLen, size)
	binary.LittleEndian.PutUint32(b[0:], ts)
	b[4] = typ
	binary.LittleEndian.PutUint32(b[5:], 7)
	binary.LittleEndian.PutUint32(b[9:], uint32(size))
	binary.LittleEndian.PutUint32(b[13:], at+uint32(size))
	b = append(b, body...)
	if crc {
		b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	}
	return b
}

func fdeBody(crc bool) []byte {
	b := binary.LittleEndian.AppendUint16(nil, 4)
	b = append(b, make([]byte, 50)...)
	copy(b[2:], "10.11.19-MariaDB-log")
	b = binary.LittleEndian.AppendUint32(b, 1700000000)
	b = append(b, eventHeaderLen, 56, 13, 0, 8, 0) // header length, post-header lengths
	if crc {
		return append(b, checksumCRC32)
	}
	return append(b, 0)
}

// sampleBinlog is a file: magic, FDE, two events, rotate to next.
func sampleBinlog(crc bool, next string) []byte {
	f := append([]byte(nil), binlogMagic...)
	fde := event(4, 1700000000, eventFormatDescription, fdeBody(crc), crc)
	if !crc {
		fde = append(fde, 0, 0, 0, 0) // the checksum field is present, unused
		binary.LittleEndian.PutUint32(fde[9:], uint32(len(fde)))
		binary.LittleEndian.PutUint32(fde[13:], uint32(4+len(fde)))
	}
	f = append(f, fde...)
	f = append(f, event(uint32(len(f)), 1700000100, 2, []byte("BEGIN"), crc)...)
	f = append(f, event(uint32(len(f)), 1700000105, 16, []byte{1, 2, 3, 4, 5, 6, 7, 8}, crc)...)
	if next != "" {
		f = append(f, event(uint32(len(f)), 1700000106, eventRotate, append(binary.LittleEndian.AppendUint64(nil, 4), next...), crc)...)
	}
	return f
}

func TestFileScanner(t *testing.T) {
	for _, crc := range []bool{true, false} {
		f := sampleBinlog(crc, "mysql-bin.000008")
		s := newFileScanner("mysql-bin.000007")
		// Byte by byte: every prefix is consumed up to its last complete event.
		total := 0
		for i := 0; i < len(f); i++ {
			n, err := s.feed(f[total : i+1])
			if err != nil {
				t.Fatalf("crc %v: feed up to %d: %v", crc, i, err)
			}
			total += n
		}
		if total != len(f) || !s.ended || s.next != "mysql-bin.000008" || s.checksum != crc || s.events != 4 {
			t.Fatalf("crc %v: consumed %d of %d, ended %v next %q checksum %v events %d", crc, total, len(f), s.ended, s.next, s.checksum, s.events)
		}
		first, last := s.times()
		if first.Unix() != 1700000000 || last.Unix() != 1700000106 {
			t.Errorf("times %v..%v", first, last)
		}
	}
}

func TestFileScannerErrors(t *testing.T) {
	good := sampleBinlog(true, "mysql-bin.000002")
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 0x40; return b }
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"magic", flip(1), "bad magic"},
		{"crc", flip(len(good) - 30), "CRC32"},
		{"size", func() []byte { b := append([]byte(nil), good...); binary.LittleEndian.PutUint32(b[4+9:], 3); return b }(), "size 3"},
		{"next pos", func() []byte { b := append([]byte(nil), good...); binary.LittleEndian.PutUint32(b[4+13:], 9); return b }(), "next one is at 9"},
		{"not fde first", append(append([]byte(nil), binlogMagic...), event(4, 1, 2, []byte("x"), false)...), "not a format description"},
		{"after rotate", append(append([]byte(nil), good...), event(uint32(len(good)), 1, 2, []byte("x"), true)...), "after the file's closing event"},
	} {
		_, err := newFileScanner("mysql-bin.000001").feed(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "mysql-bin.000001") {
			t.Errorf("%s: %v, want an error naming the file and %q", tc.name, err, tc.want)
		}
	}
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct {
		name, next string
		ok         bool
	}{
		{"mysql-bin.000001", "mysql-bin.000002", true},
		{"mysql-bin.999999", "mysql-bin.1000000", true},
		{"host.name-bin.000010", "host.name-bin.000011", true},
		{"mysql-bin", "", false},
		{"mysql-bin.", "", false},
		{".000001", "", false},
		{"a/b.000001", "", false},
		{"mysql-bin.00x1", "", false},
	} {
		next, ok := successor(tc.name)
		if ok != tc.ok || next != tc.next {
			t.Errorf("successor(%q) = %q, %v; want %q, %v", tc.name, next, ok, tc.next, tc.ok)
		}
	}
	if comparePos("b.000002", 4, "b.000010", 4) >= 0 || comparePos("b.000010", 5, "b.000010", 4) <= 0 || comparePos("b.1", 4, "b.000001", 4) != 0 {
		t.Error("comparePos does not order by sequence number, then position")
	}
}

func TestDumpScanner(t *testing.T) {
	head := "-- MariaDB dump 10.19\n-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n" +
		"-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1700;\n" +
		"INSERT INTO t VALUES ('" + strings.Repeat("x", 2000) + "-- CHANGE MASTER TO MASTER_LOG_FILE='evil.000001', MASTER_LOG_POS=1;');\n" +
		"-- SET GLOBAL gtid_slave_pos='0-1-42';\n"
	for _, split := range []int{1, 7, 100, len(head)} {
		d := &dumpScanner{}
		in := head + "-- Dump completed on 2026-01-01 00:00:00\n"
		for i := 0; i < len(in); i += split {
			d.Write([]byte(in[i:min(i+split, len(in))]))
		}
		r, err := d.result("test")
		if err != nil || r.BinlogFile != "mysql-bin.000003" || r.BinlogPos != 1700 || r.GTID != "0-1-42" {
			t.Errorf("split %d: %+v, %v", split, r, err)
		}
	}
	d := &dumpScanner{}
	d.Write([]byte(head))
	if _, err := d.result("test"); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("dump without completion mark: %v", err)
	}
	d = &dumpScanner{}
	d.Write([]byte("-- Dump completed\n"))
	if _, err := d.result("test"); err == nil || !strings.Contains(err.Error(), "no binlog position") {
		t.Errorf("dump without position: %v", err)
	}
}

func TestOptionValue(t *testing.T) {
	if got := optionValue(`a"b\c#d`); got != `"a\"b\\c#d"` {
		t.Errorf("optionValue = %s", got)
	}
}

// FuzzFileScanner feeds arbitrary bytes in two parts: it must never panic, consume
// more than it was given, or depend on where the input is split.
func FuzzFileScanner(f *testing.F) {
	f.Add(sampleBinlog(true, "mysql-bin.000002"), 10)
	f.Add(sampleBinlog(false, ""), 50)
	f.Add([]byte("\xfebin"), 2)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole := newFileScanner("mysql-bin.000001")
		n, err := whole.feed(data)
		if n > len(data) || n < 0 {
			t.Fatalf("consumed %d of %d", n, len(data))
		}
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		parts := newFileScanner("mysql-bin.000001")
		m, err1 := parts.feed(data[:split])
		if err1 != nil {
			if err == nil {
				t.Fatalf("prefix fails (%v) but the whole does not", err1)
			}
			return
		}
		k, err2 := parts.feed(data[m:])
		if (err2 != nil) != (err != nil) || m+k != n {
			t.Fatalf("whole: %d, %v; in parts: %d+%d, %v", n, err, m, k, err2)
		}
		if err == nil && (parts.ended != whole.ended || parts.next != whole.next || parts.checksum != whole.checksum) {
			t.Fatalf("state differs: whole %+v, parts %+v", whole, parts)
		}
		if err == nil && n >= 4 && !bytes.Equal(data[:4], binlogMagic) {
			t.Fatal("accepted a file without the magic")
		}
	})
}
