package main

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	redistest "github.com/rewind-dr/rewind/internal/testenv/redis"
)

// redisDo sends commands to a server (authenticating first) and returns one reply line
// per command (bulk replies: their content).
func redisDo(t *testing.T, s *redistest.Server, cmds ...[]string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var out []string
	for _, args := range append([][]string{{"AUTH", s.Password}}, cmds...) {
		fmt.Fprintf(c, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("redis %v: %v", args, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "$") && line != "$-1" {
			body, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimRight(body, "\r\n")
		}
		if strings.HasPrefix(line, "-") {
			t.Fatalf("redis %v: %s", args, line)
		}
		out = append(out, line)
	}
	return out[1:]
}

// TestE2ERedis backs up a Redis server's RDB, empties the server, restores the RDB into the
// server's dump file and restarts it: the keys are back.
func TestE2ERedis(t *testing.T) {
	e := &dbEnv{env: newEnv(t)}
	e.must("init")
	s := redistest.Start(t)
	redisDo(t, s, []string{"SET", "k1", "v1"}, []string{"SET", "k2", "v2"}, []string{"HSET", "h", "f", "x"})

	out := e.must("backup", s.URL)
	if !strings.Contains(out, "redis-rdb") || !strings.Contains(out, "3 keys") {
		t.Errorf("backup output:\n%s", out)
	}
	noSecret(t, s.Password, out)
	resource := "redis:" + s.Addr // the default resource name
	if r := e.run("protect", s.URL); r.code != exitUsage || !strings.Contains(r.stderr, "cannot be protected continuously") {
		t.Errorf("protect redis://: exit %d, %s", r.code, r.stderr)
	} else {
		noSecret(t, s.Password, r.stderr)
	}
	dump := filepath.Join(s.Dir, "dump.rdb")
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--at", time.Now().UTC().Format(time.RFC3339), "--target", dump)
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--xid", "5", "--target", dump)

	redisDo(t, s, []string{"FLUSHALL"})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	out = e.must("restore", "latest", "--resource", resource, "--overwrite", "--target", dump)
	if !strings.Contains(out, "restored Redis point") {
		t.Errorf("restore output:\n%s", out)
	}
	s.Restart(t)
	got := redisDo(t, s, []string{"GET", "k1"}, []string{"GET", "k2"}, []string{"HGET", "h", "f"})
	if strings.Join(got, ",") != "v1,v2,x" {
		t.Errorf("restarted server on the restored RDB: %v, want v1 v2 x", got)
	}
}
