package files_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/files/filestest"
	"github.com/rewind-dr/rewind/internal/vault"
)

func TestRestoreInclude(t *testing.T) {
	src := t.TempDir()
	for _, name := range []string{"etc/passwd", "etc/ssh/sshd_config", "etc/ssh/keys/k", "home/u/doc.md", "home/u/x/y.md", "home/u/z.txt", "var/log"} {
		writeFile(t, filepath.Join(src, name), []byte(name), 0o644)
	}
	st := filestest.New()
	res := backup(t, st, []string{src}, files.BackupOptions{})
	cases := []struct {
		include []string
		want    []string
	}{
		{[]string{"etc/ssh"}, []string{"etc", "etc/ssh", "etc/ssh/keys", "etc/ssh/keys/k", "etc/ssh/sshd_config"}},
		{[]string{"/etc/passwd", "var"}, []string{"etc", "etc/passwd", "var", "var/log"}},
		{[]string{"home/**/*.md"}, []string{"home", "home/u", "home/u/doc.md", "home/u/x", "home/u/x/y.md"}},
		{[]string{"nothing"}, nil},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.include, ","), func(t *testing.T) {
			dst := t.TempDir()
			restore(t, st, res.Root, dst, files.RestoreOptions{Include: c.include})
			var got []string
			must(t, filepath.Walk(dst, func(p string, _ os.FileInfo, err error) error {
				if p != dst {
					rel, _ := filepath.Rel(dst, p)
					got = append(got, rel)
				}
				return err
			}))
			if !slices.Equal(got, c.want) {
				t.Errorf("restored %q, want %q", got, c.want)
			}
		})
	}
	if _, err := files.Restore(context.Background(), st, res.Root, t.TempDir(), files.RestoreOptions{Include: []string{"a[b"}}); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad include pattern: %v, want Invalid", err)
	}
}

// saveTree stores a crafted tree (nodes used as given, not sorted or checked).
func saveTree(t *testing.T, st *filestest.Store, nodes ...*vault.Node) *vault.ID {
	t.Helper()
	data, err := vault.EncodeTree(&vault.Tree{Nodes: nodes})
	must(t, err)
	id, _, err := st.SaveBlob(context.Background(), vault.TreeBlob, data)
	must(t, err)
	return &id
}

func fileNode(t *testing.T, st *filestest.Store, name string, content string) *vault.Node {
	t.Helper()
	id, _, err := st.SaveBlob(context.Background(), vault.DataBlob, []byte(content))
	must(t, err)
	return &vault.Node{Name: []byte(name), Type: vault.NodeFile, Mode: 0o644, Size: uint64(len(content)), Content: []vault.ID{id}}
}

func TestRestoreRefusesPathTraversalAndSymlinkAttacks(t *testing.T) {
	st := filestest.New()
	victim := t.TempDir()
	writeFile(t, filepath.Join(victim, "passwd"), []byte("original"), 0o644)
	writeFile(t, filepath.Join(victim, "file"), []byte("original"), 0o644)
	outside := t.TempDir()

	sub := saveTree(t, st, fileNode(t, st, "../../b", "escaped"), fileNode(t, st, "ok", "fine"))
	evilDir := saveTree(t, st, fileNode(t, st, "passwd", "owned"))
	root := saveTree(t, st,
		fileNode(t, st, "", "empty name"),
		fileNode(t, st, ".", "dot"),
		fileNode(t, st, "..", "dotdot"),
		fileNode(t, st, "../x", "escaped"),
		fileNode(t, st, "a\x00b", "nul"),
		&vault.Node{Name: []byte("a"), Type: vault.NodeDir, Mode: 0o755, Subtree: sub},
		&vault.Node{Name: []byte("evil"), Type: vault.NodeSymlink, LinkTarget: []byte(victim)},
		&vault.Node{Name: []byte("evil"), Type: vault.NodeDir, Mode: 0o755, Subtree: evilDir},
		&vault.Node{Name: []byte("pre"), Type: vault.NodeDir, Mode: 0o755, Subtree: saveTree(t, st, fileNode(t, st, "passwd", "owned"))},
		fileNode(t, st, "prefile", "replaced"),
	)
	target := filepath.Join(outside, "target")
	must(t, os.Mkdir(target, 0o755))
	// symlinks planted in the target before the restore
	must(t, os.Symlink(victim, filepath.Join(target, "pre")))
	must(t, os.Symlink(filepath.Join(victim, "file"), filepath.Join(target, "prefile")))

	res, err := files.Restore(context.Background(), st, *root, target, files.RestoreOptions{})
	if !errs.Is(err, errs.Corrupt) {
		t.Fatalf("Restore error %v, want Corrupt", err)
	}
	if len(res.Failed) != 7 {
		t.Errorf("failed %q, want the 6 invalid names and the duplicate", res.Failed)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w.Err.Error(), "invalid name") && !strings.Contains(w.Path, `"`) {
			t.Errorf("warning does not quote the bad name: %v", w)
		}
	}
	for _, p := range []string{filepath.Join(victim, "passwd"), filepath.Join(victim, "file")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "original" {
			t.Errorf("victim %s changed: %q %v", p, b, err)
		}
	}
	for _, p := range []string{filepath.Join(outside, "x"), filepath.Join(outside, "b"), filepath.Join(target, "b"), filepath.Join(victim, "x")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	ents, err := os.ReadDir(victim)
	must(t, err)
	if len(ents) != 2 {
		t.Errorf("victim directory has %d entries", len(ents))
	}
	// The planted symlinks were replaced by what the point holds.
	if fi, err := os.Lstat(filepath.Join(target, "pre")); err != nil || !fi.IsDir() {
		t.Errorf("pre is %v %v, want a real directory", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "pre", "passwd")); err != nil || string(b) != "owned" {
		t.Errorf("pre/passwd = %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(target, "prefile")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("prefile is %v %v, want a regular file", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "a", "ok")); err != nil || string(b) != "fine" {
		t.Errorf("a/ok = %q %v: valid entries next to bad ones must be restored", b, err)
	}
	// The first "evil" (the symlink) is restored, the duplicate directory is refused.
	if l, err := os.Readlink(filepath.Join(target, "evil")); err != nil || l != victim {
		t.Errorf("evil = %q %v", l, err)
	}

	// Walk refuses the crafted tree too.
	if err := files.Walk(context.Background(), st, *root, func([]byte, *vault.Node) error { return nil }); !errs.Is(err, errs.Corrupt) {
		t.Errorf("Walk: %v, want Corrupt", err)
	}
}

func TestRestoreSymlinkedSubdirInTargetIsReplaced(t *testing.T) {
	// A file written through the file descriptor walk must not follow a directory symlink
	// planted between the creation of the directories and the writing of content: replace
	// the restored directory by a symlink from the Progress hook.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "dir", "f"), pseudo(100, 1), 0o644)
	st := filestest.New()
	res := backup(t, st, []string{src}, files.BackupOptions{})
	victim := t.TempDir()
	target := t.TempDir()
	swapped := false
	_, err := files.Restore(context.Background(), st, res.Root, target, files.RestoreOptions{
		Progress: func(s files.Status) {
			if !swapped {
				swapped = true
				must(t, os.RemoveAll(filepath.Join(target, "dir")))
				must(t, os.Symlink(victim, filepath.Join(target, "dir")))
			}
		},
	})
	if err == nil {
		t.Fatal("restore through a swapped-in symlink succeeded")
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Errorf("victim got %d entries", len(ents))
	}
}

func TestRestoreMissingBlobFailsOnlyItsFiles(t *testing.T) {
	for _, abort := range []bool{false, true} {
		for _, damage := range []bool{false, true} {
			name := map[bool]string{false: "missing", true: "damaged"}[damage]
			if abort {
				name += "/abort"
			}
			t.Run(name, func(t *testing.T) {
				src := t.TempDir()
				for i, n := range []string{"a", "b", "c", "d/e"} {
					writeFile(t, filepath.Join(src, n), pseudo(5000, byte(i)), 0o644)
				}
				must(t, os.Link(filepath.Join(src, "b"), filepath.Join(src, "d", "b2")))
				st := filestest.New()
				st.ChunkSize = 1024
				st.AbortStreams = abort
				res := backup(t, st, []string{src}, files.BackupOptions{})
				b, err := files.Find(context.Background(), st, res.Root, "b")
				must(t, err)
				if damage {
					st.Damage(vault.DataBlob, b.Content[2])
				} else {
					st.Delete(vault.DataBlob, b.Content[2])
				}
				dst := t.TempDir()
				rres, err := files.Restore(context.Background(), st, res.Root, dst, files.RestoreOptions{Workers: 2})
				if !errs.Is(err, errs.Corrupt) {
					t.Fatalf("error %v, want Corrupt", err)
				}
				slices.Sort(rres.Failed)
				if !slices.Equal(rres.Failed, []string{"b", "d/b2"}) {
					t.Errorf("failed %q, want b and its hard link", rres.Failed)
				}
				for i, n := range []string{"a", "c", "d/e"} {
					got, err := os.ReadFile(filepath.Join(dst, n))
					must(t, err)
					want := pseudo(5000, byte([]int{0, 2, 3}[i]))
					if string(got) != string(want) {
						t.Errorf("%s differs", n)
					}
				}
				if _, err := os.Lstat(filepath.Join(dst, "b")); err == nil {
					t.Error("a failed file was left behind")
				}
			})
		}
	}
}
