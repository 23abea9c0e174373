package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sort"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

// Options tunes the suite's sizes. Zero fields take the defaults.
type Options struct {
	// ManyPacks is how many packs the paging test saves and lists. S3 lists 1000 keys per
	// page, so an S3 run should use more than 1000. Default 64.
	ManyPacks int
	// LargeSize is the size in bytes of the large-file round trip. Default 20 MiB.
	LargeSize int
	// Parallel is how many saves run at once when filling a backend. Default 16.
	Parallel int
}

// DefaultOptions are the sizes Run uses.
var DefaultOptions = Options{ManyPacks: 64, LargeSize: 20 << 20, Parallel: 16}

func (o Options) withDefaults() Options {
	if o.ManyPacks <= 0 {
		o.ManyPacks = DefaultOptions.ManyPacks
	}
	if o.LargeSize <= 0 {
		o.LargeSize = DefaultOptions.LargeSize
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultOptions.Parallel
	}
	return o
}

// Run runs the conformance suite with DefaultOptions. newBackend must return a fresh,
// empty backend for each call; Run closes it when the subtest ends.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	RunWith(t, DefaultOptions, newBackend)
}

// RunWith runs the conformance suite with the given sizes.
func RunWith(t *testing.T, o Options, newBackend func(t *testing.T) backend.Backend) {
	o = o.withDefaults()
	open := func(t *testing.T) backend.Backend {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend.Backend, o Options)
	}{
		{"RoundTrip", testRoundTrip},
		{"RangedLoad", testRangedLoad},
		{"OutOfRange", testOutOfRange},
		{"Missing", testMissing},
		{"InvalidName", testInvalidName},
		{"Overwrite", testOverwrite},
		{"OverwriteAtomic", testOverwriteAtomic},
		{"List", testList},
		{"ListMany", testListMany},
		{"ListEmpty", testListEmpty},
		{"ListStops", testListStops},
		{"Remove", testRemove},
		{"Concurrent", testConcurrent},
		{"Canceled", testCanceled},
		{"TypeIsolation", testTypeIsolation},
		{"ConfigIgnoresName", testConfigIgnoresName},
		{"Large", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t), o)
		})
	}
}

// ID returns a random 64-character hex name, like the vault's content IDs.
func ID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func randomData(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func save(t *testing.T, b backend.Backend, h backend.Handle, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), h, data); err != nil {
		t.Fatalf("Save %v: %v", h, err)
	}
}

func load(t *testing.T, b backend.Backend, h backend.Handle, offset, length int64) []byte {
	t.Helper()
	got, err := backend.LoadAll(context.Background(), b, h, offset, length)
	if err != nil {
		t.Fatalf("Load %v [%d+%d]: %v", h, offset, length, err)
	}
	return got
}

func list(t *testing.T, b backend.Backend, ft backend.FileType) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	err := b.List(context.Background(), ft, func(fi backend.FileInfo) error {
		if _, dup := out[fi.Name]; dup {
			return fmt.Errorf("%v/%s listed twice", ft, fi.Name)
		}
		out[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List %v: %v", ft, err)
	}
	return out
}

func wantKind(t *testing.T, what string, err error, k errs.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %v", what, k)
	}
	if got := errs.KindOf(err); got != k {
		t.Fatalf("%s: got error kind %v (%v), want %v", what, got, err, k)
	}
}

// handleOf returns a handle of type ft with a fresh name.
func handleOf(ft backend.FileType) backend.Handle {
	if ft == backend.Config {
		return backend.Handle{Type: backend.Config}
	}
	return backend.Handle{Type: ft, Name: ID()}
}

func testRoundTrip(t *testing.T, b backend.Backend, _ Options) {
	for i, ft := range backend.Types {
		h := handleOf(ft)
		data := randomData(100 + i*37)
		save(t, b, h, data)
		if got := load(t, b, h, 0, 0); !bytes.Equal(got, data) {
			t.Errorf("Load %v: got %d bytes, want the %d saved", h, len(got), len(data))
		}
		fi, err := b.Stat(context.Background(), h)
		if err != nil {
			t.Fatalf("Stat %v: %v", h, err)
		}
		wantName := h.Name
		if ft == backend.Config {
			wantName = "config"
		}
		if fi.Name != wantName || fi.Size != int64(len(data)) {
			t.Errorf("Stat %v = {%q, %d}, want {%q, %d}", h, fi.Name, fi.Size, wantName, len(data))
		}
	}
	// An empty file is a file.
	h := handleOf(backend.Lock)
	save(t, b, h, nil)
	if got := load(t, b, h, 0, 0); len(got) != 0 {
		t.Errorf("Load of empty file returned %d bytes", len(got))
	}
	if fi, err := b.Stat(context.Background(), h); err != nil || fi.Size != 0 {
		t.Errorf("Stat of empty file = %+v, %v", fi, err)
	}
}

func testRangedLoad(t *testing.T, b backend.Backend, _ Options) {
	data := randomData(1000)
	h := handleOf(backend.Pack)
	save(t, b, h, data)
	for _, c := range []struct {
		name           string
		offset, length int64
	}{
		{"start", 0, 10},
		{"middle", 500, 123},
		{"end", 990, 10},
		{"whole", 0, 1000},
		{"one byte", 999, 1},
		{"to end", 300, 0},
		{"whole by zero", 0, 0},
		{"empty at end", 1000, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			end := int64(len(data))
			if c.length > 0 {
				end = c.offset + c.length
			}
			calls := 0
			var got []byte
			err := b.Load(context.Background(), h, c.offset, c.length, func(rd io.Reader) error {
				calls++
				var err error
				got, err = io.ReadAll(rd)
				return err
			})
			if err != nil {
				t.Fatalf("Load [%d+%d]: %v", c.offset, c.length, err)
			}
			if calls == 0 {
				t.Fatalf("Load [%d+%d]: fn never called", c.offset, c.length)
			}
			if !bytes.Equal(got, data[c.offset:end]) {
				t.Errorf("Load [%d+%d]: got %d bytes, want data[%d:%d]", c.offset, c.length, len(got), c.offset, end)
			}
		})
	}
}

func testOutOfRange(t *testing.T, b backend.Backend, _ Options) {
	h := handleOf(backend.Pack)
	save(t, b, h, randomData(1000))
	for _, c := range []struct{ offset, length int64 }{
		{0, 1001}, {995, 10}, {1000, 1}, {1001, 0}, {5000, 10}, {-1, 0}, {0, -1},
	} {
		called := false
		err := b.Load(context.Background(), h, c.offset, c.length, func(rd io.Reader) error {
			called = true
			_, err := io.ReadAll(rd)
			return err
		})
		wantKind(t, fmt.Sprintf("Load [%d+%d] of 1000 bytes", c.offset, c.length), err, errs.Invalid)
		if called {
			t.Errorf("Load [%d+%d]: fn was called for an out-of-range load", c.offset, c.length)
		}
	}
}

func testMissing(t *testing.T, b backend.Backend, _ Options) {
	ctx := context.Background()
	for _, ft := range backend.Types {
		h := handleOf(ft)
		err := b.Load(ctx, h, 0, 0, func(io.Reader) error {
			t.Errorf("Load %v: fn called for a missing file", h)
			return nil
		})
		wantKind(t, "Load missing "+h.String(), err, errs.NotFound)
		err = b.Load(ctx, h, 10, 5, func(io.Reader) error { return nil })
		wantKind(t, "ranged Load missing "+h.String(), err, errs.NotFound)
		_, err = b.Stat(ctx, h)
		wantKind(t, "Stat missing "+h.String(), err, errs.NotFound)
		wantKind(t, "Remove missing "+h.String(), b.Remove(ctx, h), errs.NotFound)
	}
}

func testInvalidName(t *testing.T, b backend.Backend, _ Options) {
	for _, ft := range []backend.FileType{backend.Key, backend.Pack, backend.Index, backend.Point, backend.Lock} {
		err := b.Save(context.Background(), backend.Handle{Type: ft}, []byte("x"))
		wantKind(t, fmt.Sprintf("Save %v with empty name", ft), err, errs.Invalid)
	}
}

func testOverwrite(t *testing.T, b backend.Backend, _ Options) {
	h := handleOf(backend.Lock)
	save(t, b, h, randomData(5000))
	second := randomData(300)
	save(t, b, h, second)
	if got := load(t, b, h, 0, 0); !bytes.Equal(got, second) {
		t.Errorf("after overwrite Load returned %d bytes, want the 300 saved last", len(got))
	}
	if n := list(t, b, backend.Lock); len(n) != 1 || n[h.Name] != 300 {
		t.Errorf("after overwrite List = %v, want one file of 300 bytes", n)
	}
}

// testOverwriteAtomic saves two versions in turn while readers check that they always see
// one whole version.
func testOverwriteAtomic(t *testing.T, b backend.Backend, _ Options) {
	h := handleOf(backend.Index)
	a, c := randomData(256<<10), randomData(200<<10)
	save(t, b, h, a)
	ctx := context.Background()
	var g errgroup.Group
	g.Go(func() error {
		for i := 0; i < 10; i++ {
			data := a
			if i%2 == 0 {
				data = c
			}
			if err := b.Save(ctx, h, data); err != nil {
				return fmt.Errorf("saving %d: %w", i, err)
			}
		}
		return nil
	})
	for r := 0; r < 3; r++ {
		g.Go(func() error {
			for i := 0; i < 10; i++ {
				got, err := backend.LoadAll(ctx, b, h, 0, 0)
				if err != nil {
					return fmt.Errorf("loading: %w", err)
				}
				if !bytes.Equal(got, a) && !bytes.Equal(got, c) {
					return fmt.Errorf("a load saw %d bytes that match neither version", len(got))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func testList(t *testing.T, b backend.Backend, _ Options) {
	want := make(map[backend.FileType]map[string]int64)
	for _, ft := range backend.Types {
		want[ft] = make(map[string]int64)
		n := 5
		if ft == backend.Config {
			n = 1
		}
		for i := 0; i < n; i++ {
			h := handleOf(ft)
			data := randomData(10 + i)
			save(t, b, h, data)
			name := h.Name
			if ft == backend.Config {
				name = "config"
			}
			want[ft][name] = int64(len(data))
		}
	}
	for _, ft := range backend.Types {
		got := list(t, b, ft)
		if !equalSizes(got, want[ft]) {
			t.Errorf("List %v = %v, want %v", ft, got, want[ft])
		}
	}
}

func equalSizes(a, b map[string]int64) bool {
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

func testListMany(t *testing.T, b backend.Backend, o Options) {
	ctx := context.Background()
	names := make([]string, o.ManyPacks)
	for i := range names {
		names[i] = ID()
	}
	var g errgroup.Group
	g.SetLimit(o.Parallel)
	for i, name := range names {
		g.Go(func() error {
			return b.Save(ctx, backend.Handle{Type: backend.Pack, Name: name}, []byte{byte(i)})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("saving %d packs: %v", len(names), err)
	}
	got := list(t, b, backend.Pack)
	if len(got) != len(names) {
		t.Fatalf("List packs returned %d files, want %d", len(got), len(names))
	}
	for _, name := range names {
		if got[name] != 1 {
			t.Fatalf("List packs: %s missing or wrong size (%d)", name, got[name])
		}
	}
}

func testListEmpty(t *testing.T, b backend.Backend, _ Options) {
	for _, ft := range backend.Types {
		if got := list(t, b, ft); len(got) != 0 {
			t.Errorf("List %v on an empty backend = %v", ft, got)
		}
	}
}

func testListStops(t *testing.T, b backend.Backend, _ Options) {
	for i := 0; i < 5; i++ {
		save(t, b, handleOf(backend.Point), []byte("p"))
	}
	stop := fmt.Errorf("stop here")
	calls := 0
	err := b.List(context.Background(), backend.Point, func(backend.FileInfo) error {
		calls++
		return stop
	})
	if err != stop {
		t.Errorf("List returned %v, want fn's error returned as is", err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times after returning an error, want 1", calls)
	}
}

func testRemove(t *testing.T, b backend.Backend, _ Options) {
	ctx := context.Background()
	keep, gone := handleOf(backend.Pack), handleOf(backend.Pack)
	save(t, b, keep, []byte("keep"))
	save(t, b, gone, []byte("gone"))
	if err := b.Remove(ctx, gone); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	_, err := b.Stat(ctx, gone)
	wantKind(t, "Stat after Remove", err, errs.NotFound)
	got := list(t, b, backend.Pack)
	if _, ok := got[gone.Name]; ok || len(got) != 1 {
		t.Errorf("List after Remove = %v, want only %s", got, keep.Name)
	}
	wantKind(t, "second Remove", b.Remove(ctx, gone), errs.NotFound)
	cfg := backend.Handle{Type: backend.Config}
	save(t, b, cfg, []byte("c"))
	if err := b.Remove(ctx, cfg); err != nil {
		t.Fatalf("Remove config: %v", err)
	}
	if got := list(t, b, backend.Config); len(got) != 0 {
		t.Errorf("List config after Remove = %v", got)
	}
}

func testConcurrent(t *testing.T, b backend.Backend, _ Options) {
	ctx := context.Background()
	var g errgroup.Group
	var mu sync.Mutex
	saved := make(map[string][]byte)
	for w := 0; w < 8; w++ {
		g.Go(func() error {
			for i := 0; i < 8; i++ {
				h := handleOf(backend.Pack)
				data := randomData(1000 + w*100 + i)
				if err := b.Save(ctx, h, data); err != nil {
					return fmt.Errorf("saving %v: %w", h, err)
				}
				got, err := backend.LoadAll(ctx, b, h, 0, 0)
				if err != nil {
					return fmt.Errorf("loading %v: %w", h, err)
				}
				if !bytes.Equal(got, data) {
					return fmt.Errorf("loading %v returned other bytes", h)
				}
				mu.Lock()
				saved[h.Name] = data
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	got := list(t, b, backend.Pack)
	if len(got) != len(saved) {
		t.Errorf("List after concurrent saves: %d files, want %d", len(got), len(saved))
	}
}

func testCanceled(t *testing.T, b backend.Backend, _ Options) {
	h := handleOf(backend.Key)
	save(t, b, h, []byte("key"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantKind(t, "Save with canceled context", b.Save(ctx, handleOf(backend.Key), []byte("x")), errs.Canceled)
	err := b.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		_, err := io.ReadAll(rd)
		return err
	})
	wantKind(t, "Load with canceled context", err, errs.Canceled)
	_, err = b.Stat(ctx, h)
	wantKind(t, "Stat with canceled context", err, errs.Canceled)
	err = b.List(ctx, backend.Key, func(backend.FileInfo) error { return nil })
	wantKind(t, "List with canceled context", err, errs.Canceled)
	wantKind(t, "Remove with canceled context", b.Remove(ctx, h), errs.Canceled)
	// Nothing was removed or added.
	if got := list(t, b, backend.Key); len(got) != 1 {
		t.Errorf("after canceled calls List keys = %v, want only %s", got, h.Name)
	}
}

func testTypeIsolation(t *testing.T, b backend.Backend, _ Options) {
	name := ID()
	types := []backend.FileType{backend.Key, backend.Pack, backend.Index, backend.Point}
	for _, ft := range types {
		save(t, b, backend.Handle{Type: ft, Name: name}, []byte(ft.String()))
	}
	for _, ft := range types {
		h := backend.Handle{Type: ft, Name: name}
		if got := load(t, b, h, 0, 0); string(got) != ft.String() {
			t.Errorf("Load %v = %q, want %q", h, got, ft.String())
		}
		if got := list(t, b, ft); len(got) != 1 || got[name] != int64(len(ft.String())) {
			t.Errorf("List %v = %v, want only %s", ft, got, name)
		}
	}
	for _, ft := range []backend.FileType{backend.Lock, backend.Config} {
		if got := list(t, b, ft); len(got) != 0 {
			t.Errorf("List %v = %v, want nothing", ft, got)
		}
	}
}

func testConfigIgnoresName(t *testing.T, b backend.Backend, _ Options) {
	data := []byte("vault config")
	save(t, b, backend.Handle{Type: backend.Config, Name: "anything"}, data)
	for _, name := range []string{"", "config", "other"} {
		h := backend.Handle{Type: backend.Config, Name: name}
		if got := load(t, b, h, 0, 0); !bytes.Equal(got, data) {
			t.Errorf("Load config with name %q = %q", name, got)
		}
		fi, err := b.Stat(context.Background(), h)
		if err != nil || fi.Name != "config" || fi.Size != int64(len(data)) {
			t.Errorf("Stat config with name %q = %+v, %v", name, fi, err)
		}
	}
	got := list(t, b, backend.Config)
	if len(got) != 1 || got["config"] != int64(len(data)) {
		t.Errorf("List config = %v, want one file named config", got)
	}
}

func testLarge(t *testing.T, b backend.Backend, o Options) {
	data := randomData(o.LargeSize)
	h := handleOf(backend.Pack)
	save(t, b, h, data)
	var sum hash.Hash
	err := b.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		sum = sha256.New() // restartable: a retrying decorator may call fn again
		_, err := io.Copy(sum, rd)
		return err
	})
	if err != nil {
		t.Fatalf("Load large: %v", err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(sum.Sum(nil), want[:]) {
		t.Fatalf("large file (%d bytes) came back different", len(data))
	}
	tail := int64(len(data)) - 4096
	if got := load(t, b, h, tail, 4096); !bytes.Equal(got, data[tail:]) {
		t.Errorf("ranged Load of the last 4 KiB returned other bytes")
	}
	fi, err := b.Stat(context.Background(), h)
	if err != nil || fi.Size != int64(len(data)) {
		t.Errorf("Stat large = %+v, %v", fi, err)
	}
}

// SortedNames returns the names a List of t yields, sorted; for tests of decorators.
func SortedNames(t *testing.T, b backend.Backend, ft backend.FileType) []string {
	t.Helper()
	m := list(t, b, ft)
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
