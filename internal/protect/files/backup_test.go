package files_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/files/filestest"
	"github.com/rewind-dr/rewind/internal/vault"
)

func TestIncrementalReadsOnlyChangedFiles(t *testing.T) {
	src := t.TempDir()
	for i, name := range []string{"a", "b", "sub/c", "sub/d"} {
		writeFile(t, filepath.Join(src, name), pseudo(10000+i, byte(i)), 0o644)
	}
	st := filestest.New()
	st.ChunkSize = 4096
	first := backup(t, st, []string{src}, files.BackupOptions{})
	if first.Summary.FilesRead != 4 {
		t.Fatalf("first backup read %d files", first.Summary.FilesRead)
	}
	changed := pseudo(5000, 77)
	writeFile(t, filepath.Join(src, "sub", "c"), changed, 0o644)
	second := backup(t, st, []string{src}, files.BackupOptions{Parent: first.Root})
	s := second.Summary
	if s.FilesRead != 1 || s.FilesUnchanged != 3 || s.BytesRead != uint64(len(changed)) {
		t.Errorf("incremental summary %+v, want 1 read (%d bytes), 3 unchanged", s, len(changed))
	}
	if s.BytesInTree != uint64(10000+10001+10003+len(changed)) {
		t.Errorf("BytesInTree %d", s.BytesInTree)
	}
	dst := t.TempDir()
	restore(t, st, second.Root, dst, files.RestoreOptions{})
	compareTrees(t, src, dst)

	// A blob of an unchanged file that is gone from the vault makes the file be read again.
	a, err := files.Find(context.Background(), st, second.Root, "a")
	must(t, err)
	st.Delete(vault.DataBlob, a.Content[1])
	third := backup(t, st, []string{src}, files.BackupOptions{Parent: second.Root})
	if third.Summary.FilesRead != 1 || third.Summary.BytesRead != 10000 {
		t.Errorf("after losing a blob: %+v, want file a read again", third.Summary)
	}
	dst2 := t.TempDir()
	restore(t, st, third.Root, dst2, files.RestoreOptions{})
	compareTrees(t, src, dst2)
}

func TestVanishingAndChangingFiles(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), []byte("first"), 0o644)
	writeFile(t, filepath.Join(src, "b"), []byte("will vanish"), 0o644)
	writeFile(t, filepath.Join(src, "c"), []byte("will grow"), 0o644)
	writeFile(t, filepath.Join(src, "d"), []byte("stays"), 0o644)
	st := filestest.New()
	var fired []string
	progress := func(s files.Status) {
		switch s.Current {
		case filepath.Join(src, "a"):
			if !slices.Contains(fired, "a") {
				fired = append(fired, "a")
				must(t, os.Remove(filepath.Join(src, "b")))
			}
		case filepath.Join(src, "c"):
			if !slices.Contains(fired, "c") {
				fired = append(fired, "c")
				f, err := os.OpenFile(filepath.Join(src, "c"), os.O_APPEND|os.O_WRONLY, 0)
				must(t, err)
				_, err = f.WriteString(" and grow")
				must(t, err)
				must(t, f.Close())
			}
		}
	}
	res, err := files.Backup(context.Background(), st, []string{src}, files.BackupOptions{Workers: 1, Progress: progress})
	must(t, err)
	var warned []string
	for _, w := range res.Warnings {
		warned = append(warned, filepath.Base(w.Path))
	}
	slices.Sort(warned)
	if !slices.Equal(warned, []string{"b", "c"}) {
		t.Fatalf("warnings %v, want for b (vanished) and c (changed)", res.Warnings)
	}
	got := listPoint(t, st, res.Root)
	if !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Errorf("point holds %q, want a c d", got)
	}
	c, err := files.Find(context.Background(), st, res.Root, "c")
	must(t, err)
	if c.Size != uint64(len("will grow and grow")) {
		t.Errorf("changed file stored with size %d", c.Size)
	}
}

func TestExcludes(t *testing.T) {
	src := t.TempDir()
	for _, name := range []string{"keep.txt", "x.tmp", "sub/y.tmp", "sub/keep", "cache/big", "sub/cache/big", "sub/deep/node_modules/m/i.js", "logs/app.log", "logs/keep"} {
		writeFile(t, filepath.Join(src, name), []byte(name), 0o644)
	}
	exfile := filepath.Join(t.TempDir(), "excludes")
	must(t, os.WriteFile(exfile, []byte("# comments and blank lines are ignored\n\n  **/node_modules  \n"+src+"/logs/*.log\n"), 0o644))
	st := filestest.New()
	res := backup(t, st, []string{src}, files.BackupOptions{
		Excludes:     []string{"*.tmp", "/" + strings.TrimPrefix(src, "/") + "/cache"},
		ExcludeFiles: []string{exfile},
	})
	got := listPoint(t, st, res.Root)
	want := []string{"keep.txt", "logs", "logs/keep", "sub", "sub/cache", "sub/cache/big", "sub/deep", "sub/keep"}
	if !slices.Equal(got, want) {
		t.Errorf("after excludes: %q\nwant %q", got, want)
	}
}

func TestOneFileSystem(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "here"), []byte("here"), 0o644)
	mnt := filepath.Join(src, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs (the test needs root and mount rights): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	writeFile(t, filepath.Join(mnt, "other-fs"), []byte("elsewhere"), 0o644)

	st := filestest.New()
	all := backup(t, st, []string{src}, files.BackupOptions{})
	if got := listPoint(t, st, all.Root); !slices.Equal(got, []string{"here", "mnt", "mnt/other-fs"}) {
		t.Errorf("without OneFileSystem: %q", got)
	}
	one := backup(t, st, []string{src}, files.BackupOptions{OneFileSystem: true})
	if got := listPoint(t, st, one.Root); !slices.Equal(got, []string{"here", "mnt"}) {
		t.Errorf("with OneFileSystem: %q, want the mount point without its contents", got)
	}
}
