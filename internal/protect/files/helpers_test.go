package files_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/files/filestest"
	"github.com/rewind-dr/rewind/internal/vault"
)

var tstamp = time.Date(2021, 3, 4, 5, 6, 7, 891011120, time.UTC)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, mode))
	must(t, os.Chmod(p, mode))
}

// pseudo returns n deterministic, incompressible-looking bytes.
func pseudo(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func backup(t testing.TB, st *filestest.Store, paths []string, opts files.BackupOptions) *files.BackupResult {
	t.Helper()
	res, err := files.Backup(context.Background(), st, paths, opts)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return res
}

func restore(t testing.TB, st *filestest.Store, root vault.ID, target string, opts files.RestoreOptions) *files.RestoreResult {
	t.Helper()
	res, err := files.Restore(context.Background(), st, root, target, opts)
	if err != nil {
		t.Fatalf("Restore: %v (warnings %v)", err, res.Warnings)
	}
	if len(res.Warnings) > 0 {
		t.Fatalf("Restore warnings: %v", res.Warnings)
	}
	return res
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	return st
}

func xattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	out := map[string]string{}
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		val := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, string(name), val)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out[string(name)] = string(val[:m])
	}
	return out
}

// compareTrees checks that dst holds exactly src: every entry's type, mode, owner, size,
// content, link target, device number, xattrs and mtime, and the hard-link structure. The
// root directories themselves are compared too.
func compareTrees(t *testing.T, src, dst string) {
	t.Helper()
	var srcPaths []string
	must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		must(t, err)
		rel, _ := filepath.Rel(src, p)
		srcPaths = append(srcPaths, rel)
		return nil
	}))
	var dstPaths []string
	must(t, filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		must(t, err)
		rel, _ := filepath.Rel(dst, p)
		dstPaths = append(dstPaths, rel)
		return nil
	}))
	if !slices.Equal(srcPaths, dstPaths) {
		t.Fatalf("entries differ:\nsrc %q\ndst %q", srcPaths, dstPaths)
	}
	inodes := map[uint64]uint64{}
	for _, rel := range srcPaths {
		sp, dp := filepath.Join(src, rel), filepath.Join(dst, rel)
		a, b := lstat(t, sp), lstat(t, dp)
		if a.Mode != b.Mode {
			t.Errorf("%q: mode %#o, restored %#o", rel, a.Mode, b.Mode)
		}
		if a.Uid != b.Uid || a.Gid != b.Gid {
			t.Errorf("%q: owner %d:%d, restored %d:%d", rel, a.Uid, a.Gid, b.Uid, b.Gid)
		}
		if a.Mtim != b.Mtim {
			t.Errorf("%q: mtime %v, restored %v", rel, time.Unix(a.Mtim.Unix()), time.Unix(b.Mtim.Unix()))
		}
		if a.Nlink != b.Nlink && a.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%q: %d links, restored %d", rel, a.Nlink, b.Nlink)
		}
		if a.Nlink > 1 && a.Mode&unix.S_IFMT == unix.S_IFREG {
			if want, ok := inodes[a.Ino]; ok && want != b.Ino {
				t.Errorf("%q: hard link not restored as a link", rel)
			}
			inodes[a.Ino] = b.Ino
		}
		if a.Rdev != b.Rdev {
			t.Errorf("%q: rdev %d, restored %d", rel, a.Rdev, b.Rdev)
		}
		if ax, bx := xattrs(t, sp), xattrs(t, dp); !mapsEqual(ax, bx) {
			t.Errorf("%q: xattrs %v, restored %v", rel, ax, bx)
		}
		switch a.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if a.Size != b.Size {
				t.Errorf("%q: size %d, restored %d", rel, a.Size, b.Size)
			}
			x, err := os.ReadFile(sp)
			must(t, err)
			y, err := os.ReadFile(dp)
			must(t, err)
			if !bytes.Equal(x, y) {
				t.Errorf("%q: content differs", rel)
			}
		case unix.S_IFLNK:
			x, err := os.Readlink(sp)
			must(t, err)
			y, err := os.Readlink(dp)
			must(t, err)
			if x != y {
				t.Errorf("%q: link target %q, restored %q", rel, x, y)
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// listPoint returns the paths of a point in Walk order.
func listPoint(t testing.TB, st files.Store, root vault.ID) []string {
	t.Helper()
	var out []string
	must(t, files.Walk(context.Background(), st, root, func(p []byte, n *vault.Node) error {
		out = append(out, string(p))
		return nil
	}))
	return out
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
