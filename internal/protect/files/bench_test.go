package files_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/files/filestest"
)

func smallFiles(b *testing.B) (string, int64) {
	src := b.TempDir()
	var total int64
	for d := range 20 {
		for f := range 100 {
			data := pseudo(1000+d*10+f, byte(d*100+f))
			writeFile(b, filepath.Join(src, fmt.Sprintf("d%02d", d), fmt.Sprintf("f%03d", f)), data, 0o644)
			total += int64(len(data))
		}
	}
	return src, total
}

func largeFile(b *testing.B) (string, int64) {
	src := b.TempDir()
	const size = 64 << 20
	writeFile(b, filepath.Join(src, "large"), pseudo(size, 3), 0o644)
	return src, size
}

func benchBackup(b *testing.B, src string, total int64) {
	b.SetBytes(total)
	for b.Loop() {
		st := filestest.New()
		backup(b, st, []string{src}, files.BackupOptions{})
	}
}

func benchRestore(b *testing.B, src string, total int64) {
	st := filestest.New()
	res := backup(b, st, []string{src}, files.BackupOptions{})
	dst := b.TempDir()
	b.SetBytes(total)
	i := 0
	for b.Loop() {
		i++
		target := filepath.Join(dst, fmt.Sprint(i))
		restore(b, st, res.Root, target, files.RestoreOptions{})
		b.StopTimer()
		os.RemoveAll(target)
		b.StartTimer()
	}
}

func BenchmarkBackupSmallFiles(b *testing.B) {
	src, total := smallFiles(b)
	benchBackup(b, src, total)
}

func BenchmarkRestoreSmallFiles(b *testing.B) {
	src, total := smallFiles(b)
	benchRestore(b, src, total)
}

func BenchmarkBackupLargeFile(b *testing.B) {
	src, total := largeFile(b)
	benchBackup(b, src, total)
}

func BenchmarkRestoreLargeFile(b *testing.B) {
	src, total := largeFile(b)
	benchRestore(b, src, total)
}
