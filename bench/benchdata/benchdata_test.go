package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []struct {
		dir  string
		seed uint64
	}{{a, 1}, {b, 1}, {c, 2}} {
		sum, err := Generate(d.dir, d.seed, 6<<20, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Files != 6 || sum.Bytes != 6<<20 {
			t.Fatalf("Generate wrote %v, want 6 files of 6 MiB in all", sum)
		}
	}
	fa, fb, fc := readAll(t, a), readAll(t, b), readAll(t, c)
	if len(fa) != 6 {
		t.Fatalf("got files %v", len(fa))
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if bytes.Equal(data, fc[name]) {
			t.Errorf("%s is the same under another seed", name)
		}
	}
}

func TestTextCompressesButNotToNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(dir, 3, 8<<20, 8<<20); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		min, max float64
	}{{"text-00.txt", 1.8, 6}, {"random-00.bin", 0.95, 1.05}} {
		data, err := os.ReadFile(filepath.Join(dir, tt.name))
		if err != nil {
			t.Fatal(err)
		}
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(data)
		w.Close()
		ratio := float64(len(data)) / float64(z.Len())
		if ratio < tt.min || ratio > tt.max {
			t.Errorf("%s compresses %.2f:1, want between %.1f and %.1f", tt.name, ratio, tt.min, tt.max)
		}
	}
}

func TestMutate(t *testing.T) {
	dir := t.TempDir()
	orig := map[string][]byte{}
	for i := range 400 {
		name := fmt.Sprintf("f%03d", i)
		b := bytes.Repeat([]byte{byte(i)}, 100+i)
		orig[name] = b
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<16) // 200 MiB: 200 segments
	orig["big"] = big
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir()
	for name, b := range orig {
		if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := Mutate(dir, 7, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	sum2, err := Mutate(copyDir, 7, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sum2 {
		t.Fatalf("same seed, different mutations: %v vs %v", sum, sum2)
	}
	got, other := readAll(t, dir), readAll(t, copyDir)
	var changedName string
	var grown int64
	changedSmall := 0
	for name, b := range got {
		if !bytes.Equal(b, other[name]) {
			t.Fatalf("same seed mutated %s differently", name)
		}
		if d := len(b) - len(orig[name]); d < 0 || d > 16*len(orig[name]) {
			t.Fatalf("%s changed size by %d", name, d)
		} else if d > 0 {
			grown += int64(d)
			if name != "big" {
				changedSmall++
				changedName = name
			}
		}
	}
	if grown != sum.BytesAdded {
		t.Fatalf("files grew by %d bytes, summary says %d", grown, sum.BytesAdded)
	}
	if changedSmall < 8 || changedSmall > 40 {
		t.Fatalf("%d of 400 small files changed, want about 5%%", changedSmall)
	}
	bigInserts := sum.Inserts - changedSmall
	if bigInserts < 3 || bigInserts > 25 {
		t.Fatalf("%d of 200 segments of the big file changed, want about 5%%", bigInserts)
	}
	if info, err := os.Stat(filepath.Join(dir, changedName)); err != nil || info.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v %v", info.Mode(), err)
	}
}
