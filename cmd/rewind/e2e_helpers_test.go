package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rewindBin is the binary built once by TestMain for the tests that run it as a process
// (to kill it, or to see exit codes and output exactly as a user does).
var rewindBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rewind-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rewindBin = filepath.Join(dir, "rewind")
	build := exec.Command("go", "build", "-o", rewindBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rewind:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a test's vault environment: a password and cheap KDF parameters.
type env struct {
	t     *testing.T
	vault string
	extra []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, vault: filepath.Join(t.TempDir(), "vault")}
}

func (e *env) environ() []string {
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"REWIND_PASSWORD=correct horse", "REWIND_KDF=1,1024,1", "REWIND_VAULT=" + e.vault, "REWIND_HOST=testhost"}
	return append(base, e.extra...)
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// run runs rewind with args and returns its exit code and output.
func (e *env) run(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(rewindBin, args...)
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("rewind %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs rewind and fails the test unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("rewind %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// entry is everything the tests compare about one file system entry.
type entry struct {
	Type    string
	Mode    uint32
	UID     uint32
	GID     uint32
	Size    int64
	MTimeNs int64
	Link    string
	Rdev    uint64
	Xattrs  string
	Content string // sha256 of a regular file
	LinkSet string // for hard links: the smallest path of the inode's group
}

// snapshot records every entry under root (root itself as "."), keyed by relative path.
// Directory mtimes are recorded too.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{Mode: st.Mode &^ unix.S_IFMT, UID: st.Uid, GID: st.Gid, MTimeNs: st.Mtim.Nano()}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Type, e.Size = "file", st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.Content = hex.EncodeToString(sum[:])
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFDIR:
			e.Type = "dir"
		case unix.S_IFLNK:
			e.Type = "symlink"
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Link = l
		case unix.S_IFIFO:
			e.Type = "fifo"
		case unix.S_IFCHR:
			e.Type, e.Rdev = "char", st.Rdev
		case unix.S_IFBLK:
			e.Type, e.Rdev = "block", st.Rdev
		default:
			e.Type = "other"
		}
		e.Xattrs = xattrString(t, p)
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, paths := range inodes {
		sort.Strings(paths)
		for _, p := range paths {
			e := out[p]
			e.LinkSet = paths[0]
			out[p] = e
		}
	}
	return out
}

func xattrString(t *testing.T, p string) string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		v := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		parts = append(parts, name+"="+string(v[:n]))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

// compareTrees fails the test for every difference between two snapshots.
func compareTrees(t *testing.T, want, got map[string]entry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%q: missing after restore", p)
			continue
		}
		if g != w {
			t.Errorf("%q differs:\n want %+v\n  got %+v", p, w, g)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%q: restored but not in the source", p)
		}
	}
}

// cmd returns an unstarted rewind command with the env's environment.
func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(rewindBin, args...)
	c.Env = e.environ()
	return c
}
