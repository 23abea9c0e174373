package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// makeEveryKind builds a tree with every file kind Rewind protects and returns its root.
func makeEveryKind(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "dir/nested/deeper"), 0o755))
	must(os.WriteFile(filepath.Join(root, "empty"), nil, 0o644))
	must(os.WriteFile(filepath.Join(root, "dir/small.txt"), []byte("hello, rewind\n"), 0o640))
	big := make([]byte, 9<<20+12345) // several chunks
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	must(os.WriteFile(filepath.Join(root, "dir/nested/big.bin"), big, 0o600))
	must(os.Symlink("dir/small.txt", filepath.Join(root, "link")))
	must(os.Symlink("/nonexistent/target", filepath.Join(root, "dangling")))
	must(os.Link(filepath.Join(root, "dir/small.txt"), filepath.Join(root, "hardlink")))
	// A sparse file: 64 MiB with two small data extents.
	f, err := os.Create(filepath.Join(root, "sparse.img"))
	must(err)
	_, err = f.WriteAt([]byte("start"), 0)
	must(err)
	_, err = f.WriteAt([]byte("middle"), 40<<20)
	must(err)
	must(f.Truncate(64 << 20))
	must(f.Close())
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o620))
	must(unix.Mknod(filepath.Join(root, "chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	must(os.WriteFile(filepath.Join(root, "setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(root, "setuid"), 0o4755|os.ModeSetuid))
	must(unix.Chmod(filepath.Join(root, "setuid"), 0o4755))
	must(os.Chown(filepath.Join(root, "dir/small.txt"), 1234, 5678))
	must(unix.Lchown(filepath.Join(root, "link"), 4321, 8765))
	must(unix.Setxattr(filepath.Join(root, "dir/small.txt"), "user.origin", []byte("shop"), 0))
	must(unix.Setxattr(filepath.Join(root, "dir"), "user.tier", []byte("gold"), 0))
	odd := string([]byte{'b', 'a', 'd', 0xff, 0xfe, '-', 'n', 'a', 'm', 'e'})
	must(os.WriteFile(filepath.Join(root, odd), []byte("not utf-8"), 0o644))
	must(os.WriteFile(filepath.Join(root, "new\nline"), []byte("newline in name"), 0o644))
	must(os.WriteFile(filepath.Join(root, " spaced  "), []byte("spaces"), 0o644))
	old := time.Date(2001, 2, 3, 4, 5, 6, 789000000, time.UTC)
	for _, p := range []string{"empty", "dir/small.txt", "dir/nested/big.bin", "sparse.img", "fifo", "dir/nested/deeper", "dir/nested", "dir"} {
		must(os.Chtimes(filepath.Join(root, p), old, old))
	}
	must(unix.Lutimes(filepath.Join(root, "link"), []unix.Timeval{{Sec: old.Unix()}, {Sec: old.Unix()}}))
}

func TestRoundTripEveryKind(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	makeEveryKind(t, src)
	want := snapshot(t, src)

	e.must("init")
	out := e.must("backup", "--tag", "app=shop", src)
	if !strings.Contains(out, "saved") {
		t.Fatalf("backup output: %s", out)
	}
	target := filepath.Join(t.TempDir(), "restore")
	e.must("restore", "latest", "--target", target)
	got := snapshot(t, target)
	// The target directory itself gets the source directory's metadata.
	compareTrees(t, want, got)

	var srcSt, dstSt unix.Stat_t
	if err := unix.Stat(filepath.Join(src, "sparse.img"), &srcSt); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(target, "sparse.img"), &dstSt); err != nil {
		t.Fatal(err)
	}
	if dstSt.Blocks > srcSt.Blocks+2048 { // 1 MiB of slack in 512-byte blocks
		t.Errorf("sparse file: %d blocks restored for %d in the source", dstSt.Blocks, srcSt.Blocks)
	}

	// The listing shows odd names unambiguously, and --json carries the raw bytes.
	ls := e.must("ls", "latest")
	if !strings.Contains(ls, `"new\nline"`) || !strings.Contains(ls, "dir/nested/big.bin") {
		t.Errorf("ls output:\n%s", ls)
	}
	pts := e.must("points", "--json")
	var list []pointJSON
	if err := json.Unmarshal([]byte(pts), &list); err != nil {
		t.Fatalf("points --json: %v\n%s", err, pts)
	}
	if len(list) != 1 || list[0].Tags["app"] != "shop" || list[0].Host != "testhost" || list[0].Paths[0] != src {
		t.Errorf("points --json: %+v", list)
	}
	if r := e.run("check", "--read-data"); r.code != 0 {
		t.Fatalf("check: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestSeveralPathsRestoreSideBySide(t *testing.T) {
	e := newEnv(t)
	base := t.TempDir()
	for _, d := range []string{"data", "etc"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.must("init")
	e.must("backup", "--resource", "shop", filepath.Join(base, "data"), filepath.Join(base, "etc"))
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "shop", "--target", target)
	for _, d := range []string{"data", "etc"} {
		b, err := os.ReadFile(filepath.Join(target, d, "f"))
		if err != nil || string(b) != d {
			t.Errorf("%s/f: %q, %v", d, b, err)
		}
	}
	// --include restores only what matches.
	inc := t.TempDir()
	e.must("restore", "latest", "--target", inc, "--include", "etc/**")
	if _, err := os.Stat(filepath.Join(inc, "data")); !os.IsNotExist(err) {
		t.Errorf("data restored despite --include etc/**: %v", err)
	}
	if _, err := os.Stat(filepath.Join(inc, "etc", "f")); err != nil {
		t.Errorf("etc/f not restored: %v", err)
	}
}

func TestIncrementalReadsOnlyChanged(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	for i := 0; i < 50; i++ {
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), []byte(strings.Repeat("x", 1000+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.must("init")
	e.must("backup", src)
	if err := os.WriteFile(filepath.Join(src, "faa"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.must("backup", "--json", src)
	var sum struct {
		MessageType    string `json:"message_type"`
		FilesRead      int    `json:"files_read"`
		FilesUnchanged int    `json:"files_unchanged"`
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, `"summary"`) {
			if err := json.Unmarshal([]byte(line), &sum); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sum.FilesRead != 1 || sum.FilesUnchanged != 49 {
		t.Errorf("second backup read %d files and reused %d; want 1 and 49\n%s", sum.FilesRead, sum.FilesUnchanged, out)
	}
}

func TestStdinBackup(t *testing.T) {
	e := newEnv(t)
	e.must("init")
	dump := strings.Repeat("INSERT INTO t VALUES (1);\n", 10000)
	cmd := e.cmd("backup", "--stdin", "--resource", "shop-dump", "--stdin-name", "shop.sql")
	cmd.Stdin = strings.NewReader(dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("backup --stdin: %v\n%s", err, out)
	}
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "shop-dump", "--target", target)
	b, err := os.ReadFile(filepath.Join(target, "shop.sql"))
	if err != nil || string(b) != dump {
		t.Fatalf("restored dump: %d bytes, %v", len(b), err)
	}
	if r := e.run("backup", "--stdin"); r.code != exitUsage || !strings.Contains(r.stderr, "--resource") {
		t.Errorf("--stdin without --resource: exit %d, %s", r.code, r.stderr)
	}
}

func TestWrongPasswordChangesNothing(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("init")
	e.must("backup", src)
	before := snapshot(t, e.vault)

	bad := newEnv(t)
	bad.vault = e.vault
	bad.extra = []string{"REWIND_PASSWORD=wrong"}
	for _, args := range [][]string{{"backup", src}, {"points"}, {"restore", "latest", "--target", t.TempDir()}, {"prune"}, {"forget", "--keep-last", "1"}, {"key", "list"}} {
		r := bad.run(args...)
		if r.code != exitWrongKey {
			t.Errorf("%v with a wrong password: exit %d, want %d\n%s", args, r.code, exitWrongKey, r.stderr)
		}
		if !strings.Contains(r.stderr, "password") {
			t.Errorf("%v: message does not mention the password: %s", args, r.stderr)
		}
	}
	compareTrees(t, before, snapshot(t, e.vault))
}

func TestKeyManagement(t *testing.T) {
	e := newEnv(t)
	e.must("init")
	add := *e
	add.extra = []string{"REWIND_NEW_PASSWORD=second password"}
	add.must("key", "add")
	second := *e
	second.extra = []string{"REWIND_PASSWORD=second password"}
	var keys []struct {
		Name    string `json:"name"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(second.must("key", "list", "--json")), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("key list: %v %+v", err, keys)
	}
	var first string
	for _, k := range keys {
		if !k.Current {
			first = k.Name
		}
	}
	// The key in use cannot be removed; another can.
	if r := e.run("key", "remove", first); r.code == 0 {
		t.Errorf("removing the key in use succeeded")
	}
	second.must("key", "remove", first)
	if r := e.run("points"); r.code != exitWrongKey {
		t.Errorf("old password after its key was removed: exit %d", r.code)
	}
	// The last key cannot be removed, and passwd changes the password.
	pw := second
	pw.extra = append(pw.extra, "REWIND_NEW_PASSWORD=third password")
	pw.must("key", "passwd")
	if r := second.run("points"); r.code != exitWrongKey {
		t.Errorf("password before passwd still works: exit %d", r.code)
	}
	third := *e
	third.extra = []string{"REWIND_PASSWORD=third password"}
	third.must("points")
}

func TestForgetAndPrune(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	e.must("init")
	for i := 0; i < 4; i++ {
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(strings.Repeat(string(rune('a'+i)), 200000)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.must("backup", src)
	}
	dry := e.must("forget", "--keep-last", "2", "--dry-run")
	if !strings.Contains(dry, "would remove 2 points") {
		t.Errorf("dry run: %s", dry)
	}
	var list []pointJSON
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &list); err != nil || len(list) != 4 {
		t.Fatalf("dry run changed the points: %v %d", err, len(list))
	}
	e.must("forget", "--keep-last", "2", "--prune")
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("after forget: %v %d", err, len(list))
	}
	target := t.TempDir()
	e.must("restore", "latest", "--target", target)
	b, _ := os.ReadFile(filepath.Join(target, "f"))
	if string(b) != strings.Repeat("d", 200000) {
		t.Errorf("latest restore wrong after prune")
	}
	if r := e.run("check", "--read-data"); r.code != 0 || strings.Contains(r.stdout, "warning") {
		t.Errorf("check after prune: %d\n%s", r.code, r.stdout)
	}
	if r := e.run("forget"); r.code != exitUsage {
		t.Errorf("forget with no policy: exit %d, want %d (%s)", r.code, exitUsage, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	e.vault = ""
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"points"}, exitUsage, "no vault"},
		{[]string{"init", "--vault", "s3://"}, exitUsage, "s3"},
		{[]string{"points", "--vault", t.TempDir()}, exitNotFound, ""},
		{[]string{"check", "--vault", "/x", "--read-data-subset", "6/5"}, exitUsage, "n/m"},
		{[]string{"backup", "--vault", "/x", "/does/not/exist"}, exitNotFound, "/does/not/exist"},
	}
	for _, c := range cases {
		r := e.run(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, r.code, c.code, r.stderr, c.msg)
		}
	}
}
