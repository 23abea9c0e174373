package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

// cheapKDF keeps tests fast; production uses vault.DefaultKDF.
var cheapKDF = vault.KDFParams{Time: 1, Memory: 64, Threads: 1}

var smallChunks = chunker.Params{Min: 16 << 10, Avg: 32 << 10, Max: 128 << 10}

const testPackSize = 64 << 10

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func initVault(t testing.TB, be backend.Backend, password string, rt vault.OpenOptions) *vault.Repository {
	t.Helper()
	if rt.Host == "" {
		rt.Host = "test-host"
	}
	r, err := vault.Init(context.Background(), be, password, vault.InitOptions{KDF: cheapKDF, PackSize: testPackSize, ChunkerParams: smallChunks, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openVault(t testing.TB, be backend.Backend, password string, rt vault.OpenOptions) *vault.Repository {
	t.Helper()
	r, err := vault.Open(context.Background(), be, password, rt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var words = strings.Fields("rewind vault backup restore point pack index seal chunk tree blob key lock prune check copy host path tag the of and a to in is")

func textBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// snapshot returns every stored file, by handle.
func snapshot(t testing.TB, be backend.Backend, skip ...backend.FileType) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
outer:
	for _, ft := range backend.Types {
		for _, s := range skip {
			if s == ft {
				continue outer
			}
		}
		err := be.List(ctx, ft, func(fi backend.FileInfo) error {
			h := backend.Handle{Type: ft, Name: fi.Name}
			b, err := backend.LoadAll(ctx, be, h, 0, 0)
			out[h.String()] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func names(t testing.TB, be backend.Backend, ft backend.FileType) []string {
	t.Helper()
	var out []string
	if err := be.List(context.Background(), ft, func(fi backend.FileInfo) error {
		out = append(out, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sameSnapshot(t testing.TB, a, b map[string][]byte) {
	t.Helper()
	for k, v := range a {
		if w, ok := b[k]; !ok {
			t.Errorf("%s disappeared", k)
		} else if !bytes.Equal(v, w) {
			t.Errorf("%s changed", k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s appeared", k)
		}
	}
}

// backupFiles stores files (path -> content, one directory level "dir/name" allowed) as a
// point and returns it.
func backupFiles(t testing.TB, r *vault.Repository, resource string, when time.Time, files map[string][]byte) *vault.Point {
	t.Helper()
	ctx := context.Background()
	lock, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock(ctx)
	dirs := map[string]*vault.Tree{"": {}}
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		dir, name := "", p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			dir, name = p[:i], p[i+1:]
		}
		if dirs[dir] == nil {
			dirs[dir] = &vault.Tree{}
		}
		n := &vault.Node{Name: []byte(name), Type: vault.NodeFile, Size: uint64(len(files[p]))}
		ch := r.NewChunker(bytes.NewReader(files[p]))
		var buf []byte
		for {
			c, err := ch.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			buf = c.Data
			id, _, err := r.SaveBlob(ctx, vault.DataBlob, c.Data)
			if err != nil {
				t.Fatal(err)
			}
			n.Content = append(n.Content, id)
		}
		dirs[dir].Nodes = append(dirs[dir].Nodes, n)
	}
	root := dirs[""]
	var dnames []string
	for d := range dirs {
		if d != "" {
			dnames = append(dnames, d)
		}
	}
	sort.Strings(dnames)
	for _, d := range dnames {
		id, err := r.SaveTree(ctx, dirs[d])
		if err != nil {
			t.Fatal(err)
		}
		root.Nodes = append(root.Nodes, &vault.Node{Name: []byte(d), Type: vault.NodeDir, Subtree: &id})
	}
	sort.Slice(root.Nodes, func(i, j int) bool { return bytes.Compare(root.Nodes[i].Name, root.Nodes[j].Name) < 0 })
	rootID, err := r.SaveTree(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p := &vault.Point{Kind: vault.KindFiles, Time: when, Host: "test-host", Resource: resource, Paths: []string{"/data"},
		Tags: map[string]string{"env": "test"}, Root: rootID}
	if _, err := r.SavePoint(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// restoreFiles reads a point back into path -> content.
func restoreFiles(t testing.TB, r *vault.Repository, p *vault.Point) map[string][]byte {
	t.Helper()
	out, err := tryRestore(r, p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryRestore(r *vault.Repository, p *vault.Point) (map[string][]byte, error) {
	ctx := context.Background()
	out := map[string][]byte{}
	var walk func(dir string, id vault.ID) error
	walk = func(dir string, id vault.ID) error {
		tree, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for _, n := range tree.Nodes {
			name := dir + string(n.Name)
			if n.Subtree != nil {
				if err := walk(name+"/", *n.Subtree); err != nil {
					return err
				}
				continue
			}
			var content []byte
			for _, c := range n.Content {
				b, err := r.LoadBlob(ctx, vault.DataBlob, c, nil)
				if err != nil {
					return err
				}
				content = append(content, b...)
			}
			if content == nil {
				content = []byte{}
			}
			out[name] = content
		}
		return nil
	}
	return out, walk("", p.Root)
}

func sameFiles(t testing.TB, want, got map[string][]byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("restored %d files, want %d", len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(v, got[k]) {
			t.Fatalf("%s: restored %d bytes differ from the %d backed up", k, len(got[k]), len(v))
		}
	}
}

func wantKind(t testing.TB, err error, k errs.Kind, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", k)
	}
	if !errs.Is(err, k) {
		t.Fatalf("error kind %v, want %v: %v", errs.KindOf(err), k, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Fatalf("error %q does not mention %q", err, c)
		}
	}
}

// faulty wraps a backend and fails operations fail selects.
type faulty struct {
	backend.Backend
	mu   sync.Mutex
	fail func(op string, h backend.Handle) bool
}

var errInjected = errs.Errorf("test", errs.Unavailable, "injected failure")

func (f *faulty) check(op string, h backend.Handle) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil && f.fail(op, h) {
		return fmt.Errorf("%s %v: %w", op, h, errInjected)
	}
	return nil
}

func (f *faulty) set(fn func(op string, h backend.Handle) bool) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *faulty) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := f.check("save", h); err != nil {
		return err
	}
	return f.Backend.Save(ctx, h, data)
}

func (f *faulty) Load(ctx context.Context, h backend.Handle, off, n int64, fn func(io.Reader) error) error {
	if err := f.check("load", h); err != nil {
		return err
	}
	return f.Backend.Load(ctx, h, off, n, fn)
}

func (f *faulty) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := f.check("list", backend.Handle{Type: t}); err != nil {
		return err
	}
	return f.Backend.List(ctx, t, fn)
}

func (f *faulty) Remove(ctx context.Context, h backend.Handle) error {
	if err := f.check("remove", h); err != nil {
		return err
	}
	return f.Backend.Remove(ctx, h)
}

var _ = errors.New
var _ = mem.New
