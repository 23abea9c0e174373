package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// packFiles lists the pack files of a local vault.
func packFiles(t *testing.T, vaultDir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(vaultDir, "packs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(matches)
	return matches
}

// damageVault backs up two directories as two points, each into its own data pack (the
// files are large and distinct), and returns the env, the source dirs and the pack that
// holds only the second point's file.
func damageVault(t *testing.T) (*env, string, string, string) {
	e := newEnv(t)
	e.must("init")
	a, b := t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(a, "a.bin"), 3<<20, 1)
	e.must("backup", "--resource", "a", a)
	before := map[string]bool{}
	for _, p := range packFiles(t, e.vault) {
		before[p] = true
	}
	writeRandom(t, filepath.Join(b, "b.bin"), 3<<20, 2)
	e.must("backup", "--resource", "b", b)
	var newData []string
	for _, p := range packFiles(t, e.vault) {
		if !before[p] {
			newData = append(newData, p)
		}
	}
	// The second backup wrote one data pack and one tree pack; the data pack is the big one.
	sort.Slice(newData, func(i, j int) bool { return fileSize(t, newData[i]) > fileSize(t, newData[j]) })
	if len(newData) == 0 {
		t.Fatal("second backup wrote no pack")
	}
	return e, a, b, newData[0]
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func writeRandom(t *testing.T, p string, n int, seed uint64) {
	t.Helper()
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFindsDamage(t *testing.T) {
	damages := map[string]func(t *testing.T, pack string){
		"flipped bit": func(t *testing.T, pack string) {
			b, err := os.ReadFile(pack)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/3] ^= 0x10
			if err := os.WriteFile(pack, b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"truncated": func(t *testing.T, pack string) {
			if err := os.Truncate(pack, fileSize(t, pack)/2); err != nil {
				t.Fatal(err)
			}
		},
		"missing": func(t *testing.T, pack string) {
			if err := os.Remove(pack); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			e, a, _, pack := damageVault(t)
			if r := e.run("check", "--read-data"); r.code != 0 {
				t.Fatalf("check before damage: %d\n%s", r.code, r.stdout)
			}
			damage(t, pack)
			packName := filepath.Base(pack)

			r := e.run("check", "--read-data")
			if r.code != exitCorrupt {
				t.Fatalf("check after damage: exit %d, want %d\n%s%s", r.code, exitCorrupt, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, packName[:16]) {
				t.Errorf("check does not name the pack %s:\n%s", packName, r.stdout)
			}
			if !strings.Contains(r.stdout, "b.bin") {
				t.Errorf("check does not name the affected file b.bin:\n%s", r.stdout)
			}
			if strings.Contains(r.stdout, "a.bin") {
				t.Errorf("check blames the undamaged file a.bin:\n%s", r.stdout)
			}
			var rep struct {
				OK     bool `json:"ok"`
				Errors []struct {
					Points []string `json:"points"`
				} `json:"errors"`
			}
			js := e.run("check", "--read-data", "--json")
			if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil || rep.OK || len(rep.Errors) == 0 {
				t.Fatalf("check --json: %v %+v\n%s", err, rep, js.stdout)
			}
			affected := map[string]bool{}
			for _, e := range rep.Errors {
				for _, p := range e.Points {
					affected[p] = true
				}
			}
			if len(affected) != 1 {
				t.Errorf("check --json names %d affected points, want exactly the damaged one: %v", len(affected), affected)
			}

			// The undamaged point still restores; the damaged one fails loudly.
			target := t.TempDir()
			e.must("restore", "latest", "--resource", "a", "--target", target)
			want := snapshot(t, a)
			compareTrees(t, want, snapshot(t, target))
			bad := e.run("restore", "latest", "--resource", "b", "--target", t.TempDir())
			if bad.code != exitCorrupt || !strings.Contains(bad.stderr, "b.bin") {
				t.Errorf("restore of the damaged point: exit %d, want %d\n%s", bad.code, exitCorrupt, bad.stderr)
			}
		})
	}
}

func TestCheckSubsetsCoverEveryPack(t *testing.T) {
	e := newEnv(t)
	e.must("init")
	src := t.TempDir()
	for i := 0; i < 6; i++ {
		writeRandom(t, filepath.Join(src, "f"), 1<<20, uint64(i+10))
		e.must("backup", src)
	}
	total := len(packFiles(t, e.vault))
	read := 0
	for i := 1; i <= 3; i++ {
		var rep struct {
			PacksRead int `json:"packs_read"`
		}
		out := e.must("check", "--read-data-subset", []string{"1/3", "2/3", "3/3"}[i-1], "--json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		read += rep.PacksRead
	}
	if read != total {
		t.Errorf("subsets 1/3..3/3 read %d packs, the vault has %d", read, total)
	}
}
