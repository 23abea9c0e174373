package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

// tamperVault returns a vault holding one point of two files.
func tamperVault(t *testing.T) (*mem.Backend, *vault.Point, map[string][]byte) {
	be := mem.New()
	r := initVault(t, be, "pw", vault.OpenOptions{})
	files := map[string][]byte{"a": randBytes(1, 50_000), "b": randBytes(2, 50_000)}
	p := backupFiles(t, r, "files:/data", newClock().Now(), files)
	return be, p, files
}

func mutate(t *testing.T, be backend.Backend, h backend.Handle, fn func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	b, err := backend.LoadAll(ctx, be, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, fn(bytes.Clone(b))); err != nil {
		t.Fatal(err)
	}
}

func flipAt(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x20
		return b
	}
}

// flipKeyData flips one bit of the sealed key material, keeping the JSON valid.
func flipKeyData(b []byte) []byte {
	var kf map[string]any
	if err := json.Unmarshal(b, &kf); err != nil {
		panic(err)
	}
	data, _ := base64.StdEncoding.DecodeString(kf["data"].(string))
	data[len(data)/2] ^= 1
	kf["data"] = base64.StdEncoding.EncodeToString(data)
	out, _ := json.Marshal(kf)
	return out
}

func truncate(b []byte) []byte { return b[:len(b)*2/3] }

func TestTamperConfigIndexKeyPoint(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		ft      backend.FileType
		mut     func([]byte) []byte
		kind    errs.Kind
		mention string
	}{
		{"config bit", backend.Config, flipAt(-5), errs.Corrupt, "config"},
		{"config truncated", backend.Config, truncate, errs.Corrupt, "config"},
		{"index bit", backend.Index, flipAt(60), errs.Corrupt, "index/"},
		{"index truncated", backend.Index, truncate, errs.Corrupt, "index/"},
		{"key bit", backend.Key, flipKeyData, errs.Unauthorized, "wrong password"},
		{"key truncated", backend.Key, truncate, errs.Unauthorized, "keys/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, _, _ := tamperVault(t)
			ns := names(t, be, tc.ft)
			name := ""
			if tc.ft != backend.Config {
				name = ns[0]
			}
			mutate(t, be, backend.Handle{Type: tc.ft, Name: name}, tc.mut)
			_, err := vault.Open(ctx, be, "pw", vault.OpenOptions{})
			wantKind(t, err, tc.kind, tc.mention)
		})
	}
}

func TestTamperPoint(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"bit", flipAt(70)},
		{"tag", flipAt(-1)},
		{"truncated", truncate},
		{"empty", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, p, _ := tamperVault(t)
			mutate(t, be, backend.Handle{Type: backend.Point, Name: p.ID.String()}, tc.mut)
			r := openVault(t, be, "pw", vault.OpenOptions{})
			_, err := r.LoadPoint(ctx, p.ID)
			wantKind(t, err, errs.Corrupt, p.ID.String())
			_, err = r.Points(ctx)
			wantKind(t, err, errs.Corrupt, p.ID.String())
		})
	}
}

func TestRenamedPointFails(t *testing.T) {
	ctx := context.Background()
	be, p, _ := tamperVault(t)
	b, _ := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Point, Name: p.ID.String()}, 0, 0)
	other := vault.ID{0xab, 0xcd}
	be.Save(ctx, backend.Handle{Type: backend.Point, Name: other.String()}, b)
	be.Remove(ctx, backend.Handle{Type: backend.Point, Name: p.ID.String()})
	r := openVault(t, be, "pw", vault.OpenOptions{})
	_, err := r.LoadPoint(ctx, other)
	wantKind(t, err, errs.Corrupt, "authentication")
}

func TestTamperPack(t *testing.T) {
	ctx := context.Background()
	be, p, files := tamperVault(t)
	r := openVault(t, be, "pw", vault.OpenOptions{})
	sameFiles(t, files, restoreFiles(t, r, p))
	t.Run("bit flip", func(t *testing.T) {
		be, p, _ := tamperVault(t)
		r := openVault(t, be, "pw", vault.OpenOptions{})
		tree, _ := r.LoadTree(ctx, p.Root)
		id := tree.Nodes[0].Content[0]
		for _, name := range names(t, be, backend.Pack) {
			mutate(t, be, backend.Handle{Type: backend.Pack, Name: name}, flipAt(100))
		}
		_, err := r.LoadBlob(ctx, vault.DataBlob, id, nil)
		if !errs.Is(err, errs.Corrupt) {
			// The flipped byte may lie in another blob of the pack; every blob must then
			// still be checked: at least one load must fail.
			_, err = tryRestore(r, p)
		}
		wantKind(t, err, errs.Corrupt, "blob")
	})
	t.Run("swap blob bodies", func(t *testing.T) {
		be := mem.New()
		r := initVault(t, be, "pw", vault.OpenOptions{})
		a, b := randBytes(10, 3000), randBytes(11, 3000) // incompressible, equal sealed sizes
		ida, _, _ := r.SaveBlob(ctx, vault.DataBlob, a)
		idb, _, _ := r.SaveBlob(ctx, vault.DataBlob, b)
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ns := names(t, be, backend.Pack)
		if len(ns) != 1 {
			t.Fatalf("%d packs", len(ns))
		}
		n := 3000 + 66
		mutate(t, be, backend.Handle{Type: backend.Pack, Name: ns[0]}, func(d []byte) []byte {
			x := bytes.Clone(d[:n])
			copy(d[:n], d[n:2*n])
			copy(d[n:2*n], x)
			return d
		})
		_, err := r.LoadBlob(ctx, vault.DataBlob, ida, nil)
		wantKind(t, err, errs.Corrupt, ida.String())
		_, err = r.LoadBlob(ctx, vault.DataBlob, idb, nil)
		wantKind(t, err, errs.Corrupt, idb.String())
	})
	t.Run("truncated", func(t *testing.T) {
		be, p, _ := tamperVault(t)
		r := openVault(t, be, "pw", vault.OpenOptions{})
		for _, name := range names(t, be, backend.Pack) {
			mutate(t, be, backend.Handle{Type: backend.Pack, Name: name}, func(b []byte) []byte { return b[:10] })
		}
		_, err := tryRestore(r, p)
		wantKind(t, err, errs.Corrupt, "pack")
	})
	t.Run("tree as data", func(t *testing.T) {
		be, p, _ := tamperVault(t)
		r := openVault(t, be, "pw", vault.OpenOptions{})
		_, err := r.LoadBlob(ctx, vault.DataBlob, p.Root, nil)
		wantKind(t, err, errs.NotFound)
	})
}

func TestPoints(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := initVault(t, be, "pw", vault.OpenOptions{})
	c := newClock()
	p1 := backupFiles(t, r, "files:/a", c.Now(), map[string][]byte{"x": []byte("one")})
	c.Add(time.Hour)
	p2 := backupFiles(t, r, "files:/b", c.Now(), map[string][]byte{"x": []byte("two")})
	c.Add(time.Hour)
	p3 := backupFiles(t, r, "files:/a", c.Now(), map[string][]byte{"x": []byte("three")})
	pts, err := r.Points(ctx)
	if err != nil || len(pts) != 3 || pts[0].ID != p1.ID || pts[2].ID != p3.ID {
		t.Fatalf("points %v %v", pts, err)
	}
	got, err := r.LoadPoint(ctx, p2.ID)
	if err != nil || got.Resource != "files:/b" || got.Tags["env"] != "test" || got.Version != vault.PointVersion || !got.Time.Equal(p2.Time) {
		t.Fatalf("loaded %+v %v", got, err)
	}
	for _, tc := range []struct {
		ref, resource string
		want          vault.ID
	}{
		{"latest", "", p3.ID},
		{"latest", "files:/b", p2.ID},
		{p1.ID.String(), "", p1.ID},
		{p2.ID.String()[:10], "", p2.ID},
		{"  LATEST ", "files:/a", p3.ID},
	} {
		p, err := r.FindPoint(ctx, tc.ref, tc.resource)
		if err != nil || p.ID != tc.want {
			t.Fatalf("FindPoint(%q, %q) = %v, %v", tc.ref, tc.resource, p, err)
		}
	}
	_, err = r.FindPoint(ctx, "latest", "files:/none")
	wantKind(t, err, errs.NotFound)
	_, err = r.FindPoint(ctx, "ab", "")
	wantKind(t, err, errs.Invalid)
	_, err = r.FindPoint(ctx, "zzzz", "")
	wantKind(t, err, errs.Invalid)
	_, err = r.FindPoint(ctx, "ffffffff"+p1.ID.String()[8:16], "")
	wantKind(t, err, errs.NotFound)
	// An ambiguous prefix lists the candidates.
	for i := 0; i < 40; i++ {
		lock, _ := r.Lock(ctx, false)
		if _, err := r.SavePoint(ctx, &vault.Point{ID: vault.ID{0xaa, 0xbb, byte(i)}, Kind: "stream", Time: c.Now(), Root: p1.Root}); err != nil {
			t.Fatal(err)
		}
		lock.Unlock(ctx)
	}
	_, err = r.FindPoint(ctx, "aabb", "")
	wantKind(t, err, errs.Invalid, "ambiguous", "aabb00")
	if err := r.DeletePoint(ctx, p2.ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, r.DeletePoint(ctx, p2.ID), errs.NotFound)
	_, err = r.LoadPoint(ctx, p2.ID)
	wantKind(t, err, errs.NotFound)
}

func TestSavePointRules(t *testing.T) {
	ctx := context.Background()
	r := initVault(t, mem.New(), "pw", vault.OpenOptions{})
	root, _ := r.SaveTree(ctx, &vault.Tree{})
	p := &vault.Point{Kind: "files", Time: time.Now(), Root: root}
	lock, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.SavePoint(ctx, p)
	wantKind(t, err, errs.Internal, "Flush")
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*vault.Point{
		{Kind: "Files!", Time: time.Now(), Root: root},
		{Kind: "files", Root: root},
		{Kind: "files", Time: time.Now(), Root: vault.ID{1}},
		{Kind: "wal", Time: time.Now(), Root: root, Range: &vault.TimeRange{From: time.Now(), To: time.Now().Add(-time.Hour)}},
	} {
		_, err := r.SavePoint(ctx, bad)
		wantKind(t, err, errs.Invalid)
	}
	lock.Unlock(ctx)
	_, err = r.SavePoint(ctx, p)
	wantKind(t, err, errs.Internal, "lock")
	lock, _ = r.Lock(ctx, false)
	defer lock.Unlock(ctx)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wal := &vault.Point{Kind: vault.KindWAL, Time: from, Root: root, Resource: "postgres:main",
		Range: &vault.TimeRange{From: from, To: from.Add(time.Hour)}, Meta: map[string]string{"timeline": "1"}}
	id, err := r.SavePoint(ctx, wal)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadPoint(ctx, id)
	if err != nil || got.Range == nil || !got.Range.To.Equal(from.Add(time.Hour)) || got.Meta["timeline"] != "1" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestDecodePointCompatibility(t *testing.T) {
	id := vault.ID{1}
	base := `"id":"` + id.String() + `","kind":"files","time":"2026-01-01T00:00:00Z","root":"` + vault.ID{2}.String() + `"`
	if _, err := vault.DecodePoint(id.String(), []byte(`{"version":1,`+base+`,"future_field":{"x":1}}`)); err != nil {
		t.Fatalf("unknown field rejected: %v", err)
	}
	for name, doc := range map[string]string{
		"newer major": `{"version":2,` + base + `}`,
		"no version":  `{` + base + `}`,
		"wrong id":    `{"version":1,` + base + `}`,
		"not json":    `{`,
	} {
		n := id.String()
		if name == "wrong id" {
			n = vault.ID{3}.String()
		}
		if _, err := vault.DecodePoint(n, []byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodePoint(f *testing.F) {
	id := vault.ID{1}
	f.Add([]byte(`{"version":1,"id":"` + id.String() + `","kind":"files","time":"2026-01-01T00:00:00Z","root":"` + vault.ID{2}.String() + `"}`))
	f.Add([]byte(`{"version":1,"range":{"from":"2026-01-01T00:00:00Z","to":"2025-01-01T00:00:00Z"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := vault.DecodePoint(id.String(), b)
		if err == nil && (p.ID != id || p.Version != 1 || p.Root.IsZero()) {
			t.Fatalf("invalid point accepted: %+v", p)
		}
	})
}

// TestSavePointWhileOthersSave: another backup in the same Repository may keep saving blobs;
// a point whose root is flushed can still be written.
func TestSavePointWhileOthersSave(t *testing.T) {
	ctx := context.Background()
	r := initVault(t, mem.New(), "pw", vault.OpenOptions{})
	lock, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock(ctx)
	root, _ := r.SaveTree(ctx, &vault.Tree{Nodes: []*vault.Node{{Name: []byte("x"), Type: vault.NodeFile}}})
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.SaveBlob(ctx, vault.DataBlob, []byte("another backup's chunk")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SavePoint(ctx, &vault.Point{Kind: "files", Time: time.Now(), Root: root}); err != nil {
		t.Fatal(err)
	}
	other, _ := r.SaveTree(ctx, &vault.Tree{})
	_, err = r.SavePoint(ctx, &vault.Point{Kind: "files", Time: time.Now(), Root: other})
	wantKind(t, err, errs.Internal, "Flush")
}
