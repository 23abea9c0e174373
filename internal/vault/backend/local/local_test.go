package local_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/backendtest"
	"github.com/rewind-dr/rewind/internal/vault/backend/local"
)

func newLocal(t *testing.T, dir string) *local.Local {
	t.Helper()
	l, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return newLocal(t, t.TempDir()) })
}

func TestConformanceAfterCreate(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		l := newLocal(t, filepath.Join(t.TempDir(), "vault"))
		if err := l.Create(context.Background()); err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestLayoutAndModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "v")
	l := newLocal(t, root)
	ctx := context.Background()
	pack := backend.Handle{Type: backend.Pack, Name: "ab" + strings.Repeat("0", 62)}
	files := map[backend.Handle]string{
		{Type: backend.Config, Name: "ignored"}: "config",
		{Type: backend.Key, Name: "k1"}:         "keys/k1",
		pack:                                    "packs/ab/" + pack.Name,
		{Type: backend.Index, Name: "i1"}:       "index/i1",
		{Type: backend.Point, Name: "p1"}:       "points/p1",
		{Type: backend.Lock, Name: "l1"}:        "locks/l1",
	}
	for h, rel := range files {
		if err := l.Save(ctx, h, []byte(rel)); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%v not at %s: %v", h, rel, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", rel, fi.Mode().Perm())
		}
		dfi, err := os.Stat(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		if dfi.Mode().Perm() != 0o700 {
			t.Errorf("directory of %s has mode %v, want 0700", rel, dfi.Mode().Perm())
		}
	}
	// No temporary files remain.
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "vault")
	l := newLocal(t, root)
	ctx := context.Background()
	if err := l.Create(ctx); err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, d := range []string{"keys", "packs", "index", "points", "locks", "packs/00", "packs/7f", "packs/ff"} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("after Create %s: %v, %v", d, fi, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "packs"))
	if err != nil || len(entries) != 256 {
		t.Errorf("packs has %d subdirectories (%v), want 256", len(entries), err)
	}
	// Create again without config is fine; with a config it fails with Exists.
	if err := l.Create(ctx); err != nil {
		t.Fatalf("second Create on an empty vault: %v", err)
	}
	if err := l.Save(ctx, backend.Handle{Type: backend.Config}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	err = l.Create(ctx)
	if !errs.Is(err, errs.Exists) || errs.HintOf(err) == "" {
		t.Fatalf("Create over a vault = %v (hint %q), want Exists with a hint", err, errs.HintOf(err))
	}
}

func TestListIgnoresTempFilesAndFailsOnUnreadableDir(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	ctx := context.Background()
	h := backend.Handle{Type: backend.Pack, Name: "cd01"}
	if err := l.Save(ctx, h, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A crashed Save leaves a temporary file; List must not report it.
	if err := os.WriteFile(filepath.Join(root, "packs", "cd", ".tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := backendtest.SortedNames(t, l, backend.Pack); len(got) != 1 || got[0] != "cd01" {
		t.Fatalf("List = %v, want [cd01]", got)
	}
	// An unreadable pack subdirectory fails the listing. Root reads any directory whatever
	// its mode, so only a non-root run can use chmod; every run checks type directories that
	// are not directories at all.
	if os.Geteuid() != 0 {
		sub := filepath.Join(root, "packs", "cd")
		if err := os.Chmod(sub, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(sub, 0o700) })
		if err := l.List(ctx, backend.Pack, func(backend.FileInfo) error { return nil }); err == nil {
			t.Error("List over an unreadable pack directory succeeded")
		}
	}
	for _, ft := range []backend.FileType{backend.Key, backend.Pack} {
		dir := filepath.Join(root, ft.String())
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := l.List(ctx, ft, func(backend.FileInfo) error { return nil })
		if err == nil {
			t.Errorf("List %v where %s is a file succeeded, want an error", ft, dir)
		}
	}
}

func TestInvalidHandles(t *testing.T) {
	l := newLocal(t, t.TempDir())
	ctx := context.Background()
	for _, h := range []backend.Handle{
		{Type: backend.Key, Name: ""},
		{Type: backend.Key, Name: "a/b"},
		{Type: backend.Key, Name: ".."},
		{Type: backend.Pack, Name: "a"},
		{Type: backend.Lock, Name: ".tmp-x"},
		{Type: backend.FileType(99), Name: "x"},
	} {
		if err := l.Save(ctx, h, []byte("x")); !errs.Is(err, errs.Invalid) {
			t.Errorf("Save %+v = %v, want Invalid", h, err)
		}
		if _, err := l.Stat(ctx, h); !errs.Is(err, errs.Invalid) {
			t.Errorf("Stat %+v = %v, want Invalid", h, err)
		}
	}
}

func TestHugeRangeIsInvalid(t *testing.T) {
	l := newLocal(t, t.TempDir())
	ctx := context.Background()
	h := backend.Handle{Type: backend.Pack, Name: "ee01"}
	if err := l.Save(ctx, h, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	// offset+length overflows int64; the check must not be fooled into a short read.
	_, err := backend.LoadAll(ctx, l, h, 10, math.MaxInt64)
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("Load [10+MaxInt64] = %v, want Invalid", err)
	}
}

func TestNewRejectsEmptyPath(t *testing.T) {
	if _, err := local.New(""); !errs.Is(err, errs.Invalid) || errs.HintOf(err) == "" {
		t.Fatalf("New(\"\") = %v, want Invalid with a hint", err)
	}
}

func BenchmarkSave4MiB(b *testing.B) {
	l, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		h := backend.Handle{Type: backend.Pack, Name: fmt.Sprintf("%02x%08d", i%256, i)}
		if err := l.Save(context.Background(), h, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadRange64KiB(b *testing.B) {
	l, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	h := backend.Handle{Type: backend.Pack, Name: "aa00"}
	if err := l.Save(context.Background(), h, make([]byte, 16<<20)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		off := int64(i%200) * 64 << 10
		err := l.Load(context.Background(), h, off, int64(len(buf)), func(rd io.Reader) error {
			_, err := io.ReadFull(rd, buf)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
