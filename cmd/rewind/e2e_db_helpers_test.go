package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dbEnv runs rewind as a given user (PostgreSQL's, when the tests run as root, so that
// the server's archive_command and restore_command share the vault with the test).
type dbEnv struct {
	*env
	cred *syscall.Credential
}

// newPostgresUserEnv returns an env whose vault, password file and commands belong to the
// postgres user when running as root. dir is a directory that user can reach.
func newPostgresUserEnv(t *testing.T) (*dbEnv, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "rewind-e2e-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The binary's directory must be reachable by the server's user too.
	if err := os.Chmod(filepath.Dir(rewindBin), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &dbEnv{env: &env{t: t, vault: filepath.Join(dir, "vault")}}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the user postgres (apt-get install -y postgresql): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return e, dir
}

// command returns an unstarted rewind command run as the env's user.
func (e *dbEnv) command(args ...string) *exec.Cmd {
	c := e.cmd(args...)
	c.Dir = filepath.Dir(e.vault)
	if e.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: e.cred}
	}
	return c
}

// runDB runs rewind as the env's user and returns its exit code and output.
func (e *dbEnv) runDB(args ...string) result {
	e.t.Helper()
	c := e.command(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	code := 0
	if err := c.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("rewind %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustDB runs rewind as the env's user and fails the test unless it exits 0.
func (e *dbEnv) mustDB(args ...string) string {
	e.t.Helper()
	r := e.runDB(args...)
	if r.code != 0 {
		e.t.Fatalf("rewind %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// wantExit runs rewind and fails the test unless it exits with code.
func (e *dbEnv) wantExit(code int, args ...string) result {
	e.t.Helper()
	r := e.runDB(args...)
	if r.code != code {
		e.t.Errorf("rewind %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// protectProc is a running 'rewind protect --json', its JSON lines collected.
type protectProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []map[string]any
	stderr bytes.Buffer
	done   chan error
}

func (e *dbEnv) startProtect(args ...string) *protectProc {
	e.t.Helper()
	p := &protectProc{t: e.t, done: make(chan error, 1)}
	p.cmd = e.command(append([]string{"protect", "--json"}, args...)...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		p.read(out)
	}()
	go func() {
		<-read
		p.done <- p.cmd.Wait()
	}()
	e.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

func (p *protectProc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			p.t.Errorf("protect printed a line that is not JSON: %q", sc.Text())
			continue
		}
		p.mu.Lock()
		p.lines = append(p.lines, m)
		p.mu.Unlock()
	}
}

// waitFor waits until a JSON line satisfies cond.
func (p *protectProc) waitFor(what string, cond func(map[string]any) bool) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if cond(l) {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		select {
		case err := <-p.done:
			p.done <- err
			p.t.Fatalf("protect ended (%v) before %s; stderr:\n%s", err, what, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s after 30s; lines %v; stderr:\n%s", what, p.lines, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGINT and requires a clean exit with a "stopped" line.
func (p *protectProc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("protect after SIGINT: %v; stderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("protect still running 30s after SIGINT")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.lines); n == 0 || p.lines[n-1]["message_type"] != "stopped" {
		p.t.Errorf("protect's last line is not 'stopped': %v", p.lines)
	}
}

// all returns the lines printed so far.
func (p *protectProc) all() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.lines...)
}

// pointsJSON runs 'rewind points --json' and returns the restorable object of resource.
func (e *dbEnv) restorable(resource string) map[string]any {
	e.t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.mustDB("points", "--json", "--resource", resource)), &list); err != nil {
		e.t.Fatal(err)
	}
	var found map[string]any
	for _, p := range list {
		if r, ok := p["restorable"].(map[string]any); ok {
			if found != nil {
				e.t.Errorf("two points of %s carry restorable", resource)
			}
			found = r
		}
		if p["id"] == nil || p["kind"] == nil {
			e.t.Errorf("points --json lost its fields: %v", p)
		}
	}
	if found == nil {
		e.t.Fatalf("no restorable range for %s in %v", resource, list)
	}
	return found
}

// noSecret fails the test if any output contains secret.
func noSecret(t *testing.T, secret string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		if strings.Contains(o, secret) {
			t.Errorf("output shows a password:\n%s", o)
		}
	}
}
