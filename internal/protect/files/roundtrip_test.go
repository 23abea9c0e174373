package files_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/files/filestest"
	"github.com/rewind-dr/rewind/internal/vault"
)

// makeEveryKind builds a tree with every kind of entry under dir (which the test's temporary
// directory file system, ext4 here, supports with user xattrs).
func makeEveryKind(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "a.txt"), []byte("hello\n"), 0o644)
	writeFile(t, filepath.Join(dir, "empty"), nil, 0o600)
	writeFile(t, filepath.Join(dir, "big.bin"), pseudo(300<<10+17, 1), 0o640)
	writeFile(t, filepath.Join(dir, "d", "e", "f", "deep.txt"), []byte("deep"), 0o644)
	must(t, os.Symlink("../a.txt", filepath.Join(dir, "d", "link")))
	must(t, os.Symlink("/nonexistent/target\nwith newline", filepath.Join(dir, "dangling")))
	writeFile(t, filepath.Join(dir, "h1"), []byte("hard linked"), 0o644)
	must(t, os.Link(filepath.Join(dir, "h1"), filepath.Join(dir, "d", "h2")))
	// sparse: 16 MiB with data at the start and in the middle only
	sp, err := os.Create(filepath.Join(dir, "sparse"))
	must(t, err)
	must(t, sp.Truncate(16<<20))
	_, err = sp.WriteAt([]byte("start"), 0)
	must(t, err)
	_, err = sp.WriteAt(pseudo(100<<10, 2), 8<<20)
	must(t, err)
	must(t, sp.Close())
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o620))
	must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(dir, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
	writeFile(t, filepath.Join(dir, "suid"), []byte("#!/bin/sh\n"), 0o755)
	must(t, os.Chmod(filepath.Join(dir, "suid"), 0o755|os.ModeSetuid|os.ModeSetgid))
	writeFile(t, filepath.Join(dir, "owned"), []byte("odd owner"), 0o644)
	must(t, os.Lchown(filepath.Join(dir, "owned"), 12345, 54321))
	must(t, os.Lchown(filepath.Join(dir, "d", "link"), 23456, 65432))
	must(t, os.MkdirAll(filepath.Join(dir, "sticky"), 0o755))
	must(t, os.Chmod(filepath.Join(dir, "sticky"), 0o777|os.ModeSticky))
	writeFile(t, filepath.Join(dir, "ro", "inside"), []byte("in a read-only dir"), 0o444)
	must(t, os.Chmod(filepath.Join(dir, "ro"), 0o555))
	writeFile(t, filepath.Join(dir, "\xff\xfe-latin1-\xe9"), []byte("non-UTF-8 name"), 0o644)
	writeFile(t, filepath.Join(dir, "new\nline"), []byte("newline name"), 0o644)
	must(t, unix.Lsetxattr(filepath.Join(dir, "a.txt"), "user.comment", []byte("first\x00file"), 0))
	must(t, unix.Lsetxattr(filepath.Join(dir, "d"), "user.dir", []byte("x"), 0))
	// user.* is not allowed on FIFOs and symlinks; trusted.* is (as root).
	must(t, unix.Lsetxattr(filepath.Join(dir, "d", "link"), "trusted.link", []byte("y"), 0))
	must(t, os.Chmod(dir, 0o751))
	must(t, unix.Lsetxattr(dir, "user.root", []byte("top"), 0))
	// times last, deepest first, so creating children does not change them
	var all []string
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		all = append(all, p)
		return err
	}))
	slices.Reverse(all)
	for i, p := range all {
		ts := []unix.Timespec{unix.NsecToTimespec(tstamp.Add(time.Hour).UnixNano()), unix.NsecToTimespec(tstamp.Add(time.Duration(i) * time.Minute).UnixNano())}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	src := t.TempDir()
	makeEveryKind(t, src)
	st := filestest.New()
	st.ChunkSize = 16 << 10
	res := backup(t, st, []string{src}, files.BackupOptions{Workers: 2})
	if len(res.Warnings) > 0 {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	s := res.Summary
	if s.Files != 12 || s.Dirs != 6 || s.Others != 5 {
		t.Errorf("summary counts files/dirs/others = %d/%d/%d, want 12/6/5", s.Files, s.Dirs, s.Others)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	rres := restore(t, st, res.Root, dst, files.RestoreOptions{Workers: 2})
	if rres.Files != 12 || rres.Others != 5 || rres.Dirs != 5 {
		t.Errorf("restore counts files/others/dirs = %d/%d/%d, want 12/5/5", rres.Files, rres.Others, rres.Dirs)
	}
	// atime is restored as recorded (checked before anything reads the file).
	a := lstat(t, filepath.Join(dst, "owned"))
	if got := time.Unix(a.Atim.Unix()); !got.Equal(tstamp.Add(time.Hour)) {
		t.Errorf("atime %v, want %v", got, tstamp.Add(time.Hour))
	}
	compareTrees(t, src, dst)

	// Holes stay holes: 16 MiB file with ~100 KiB of data.
	sp := lstat(t, filepath.Join(dst, "sparse"))
	if sp.Blocks*512 > 1<<20 {
		t.Errorf("sparse file restored with %d bytes allocated, want holes", sp.Blocks*512)
	}
	n, err := files.Find(context.Background(), st, res.Root, "sparse")
	must(t, err)
	if !n.Sparse {
		t.Error("sparse file not marked Sparse")
	}
	// user and group names are recorded
	root, err := files.Find(context.Background(), st, res.Root, "")
	must(t, err)
	if root.User != "root" || root.Group != "root" {
		t.Errorf("root dir user/group %q/%q, want root/root", root.User, root.Group)
	}
	// Hard links share content in the vault.
	h1, err := files.Find(context.Background(), st, res.Root, "h1")
	must(t, err)
	h2, err := files.Find(context.Background(), st, res.Root, "d/h2")
	must(t, err)
	if !slices.Equal(h1.Content, h2.Content) || h1.Links != 2 || h1.Inode != h2.Inode {
		t.Errorf("hard links: %+v / %+v", h1, h2)
	}

	// Restoring again over the first restore replaces files and merges directories.
	restore(t, st, res.Root, dst, files.RestoreOptions{})
	compareTrees(t, src, dst)
}

func TestWalkAndFind(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "b", "c.txt"), []byte("c"), 0o644)
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "b", "\xff"), []byte("x"), 0o644)
	st := filestest.New()
	res := backup(t, st, []string{src}, files.BackupOptions{})
	got := listPoint(t, st, res.Root)
	want := []string{"a.txt", "b", "b/c.txt", "b/\xff"}
	if !slices.Equal(got, want) {
		t.Errorf("Walk = %q, want %q", got, want)
	}
	n, err := files.Find(context.Background(), st, res.Root, "/b/c.txt")
	must(t, err)
	if string(n.Name) != "c.txt" || n.Size != 1 {
		t.Errorf("Find = %+v", n)
	}
	for _, p := range []string{"nope", "a.txt/x", "b/nope"} {
		if _, err := files.Find(context.Background(), st, res.Root, p); !errs.Is(err, errs.NotFound) {
			t.Errorf("Find(%q) = %v, want NotFound", p, err)
		}
	}
	if _, err := files.Find(context.Background(), st, res.Root, "b/../a.txt"); !errs.Is(err, errs.Invalid) {
		t.Errorf("Find with .. = %v, want Invalid", err)
	}

	// Two paths: side by side.
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "z"), []byte("z"), 0o644)
	res2 := backup(t, st, []string{filepath.Join(src, "a.txt"), other}, files.BackupOptions{})
	got = listPoint(t, st, res2.Root)
	want = []string{"a.txt", filepath.Base(other), filepath.Base(other) + "/z"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Walk of two paths = %q, want %q", got, want)
	}
	dst := t.TempDir()
	restore(t, st, res2.Root, dst, files.RestoreOptions{})
	b, err := os.ReadFile(filepath.Join(dst, filepath.Base(other), "z"))
	must(t, err)
	if string(b) != "z" {
		t.Errorf("restored z = %q", b)
	}
}

func TestBackupBadPaths(t *testing.T) {
	st := filestest.New()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	_, err := files.Backup(context.Background(), st, []string{dir, missing}, files.BackupOptions{})
	if !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing path: %v, want NotFound naming it", err)
	}
	a, b := filepath.Join(dir, "x", "same"), filepath.Join(dir, "y", "same")
	writeFile(t, a, nil, 0o644)
	writeFile(t, b, nil, 0o644)
	_, err = files.Backup(context.Background(), st, []string{a, b}, files.BackupOptions{})
	if !errs.Is(err, errs.Invalid) || errs.HintOf(err) == "" {
		t.Errorf("same base name: %v, want Invalid with a hint", err)
	}
	if st.Len(vault.DataBlob)+st.Len(vault.TreeBlob) != 0 {
		t.Error("blobs were written before the paths were checked")
	}
	_, err = files.Backup(context.Background(), st, []string{dir}, files.BackupOptions{Excludes: []string{"[x"}})
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("bad pattern: %v, want Invalid", err)
	}
	_, err = files.Backup(context.Background(), st, []string{dir}, files.BackupOptions{ExcludeFiles: []string{missing}})
	if !errs.Is(err, errs.NotFound) {
		t.Errorf("missing exclude file: %v, want NotFound", err)
	}
}

func TestBackupStream(t *testing.T) {
	st := filestest.New()
	st.ChunkSize = 1000
	data := pseudo(12345, 9)
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := files.BackupStream(context.Background(), st, strings.NewReader(string(data)), "dump.sql", files.BackupOptions{Now: func() time.Time { return now }})
	must(t, err)
	if res.Summary.BytesRead != uint64(len(data)) || res.Summary.Files != 1 {
		t.Errorf("summary %+v", res.Summary)
	}
	dst := t.TempDir()
	restore(t, st, res.Root, dst, files.RestoreOptions{})
	got, err := os.ReadFile(filepath.Join(dst, "dump.sql"))
	must(t, err)
	if string(got) != string(data) {
		t.Error("stream content differs")
	}
	if fi, err := os.Stat(filepath.Join(dst, "dump.sql")); err != nil || !fi.ModTime().Equal(now) || fi.Mode().Perm() != 0o644 {
		t.Errorf("stream file info %v %v", fi, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if _, err := files.BackupStream(context.Background(), st, strings.NewReader("x"), bad, files.BackupOptions{}); !errs.Is(err, errs.Invalid) {
			t.Errorf("BackupStream name %q: %v, want Invalid", bad, err)
		}
	}
}
