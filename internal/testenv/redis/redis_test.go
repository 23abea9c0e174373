package redis_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/testenv/redis"
)

// send sends inline commands and returns one reply line per command.
func send(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	var out []string
	for _, cmd := range cmds {
		if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

func TestStart(t *testing.T) {
	srv := redis.Start(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatalf("URL %q: %v", srv.URL, err)
	}
	if u.Scheme != "redis" || u.Host != srv.Addr {
		t.Errorf("URL = %q, want redis://…@%s", srv.URL, srv.Addr)
	}
	if pw, _ := u.User.Password(); pw != srv.Password || pw == "" {
		t.Errorf("URL password = %q, want the server's password", pw)
	}
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want loopback", srv.Addr)
	}
	if fi, err := os.Stat(srv.Dir); err != nil || !fi.IsDir() {
		t.Errorf("Dir %q: %v", srv.Dir, err)
	}

	// Without the password the server refuses commands.
	if got := send(t, srv.Addr, "PING"); !strings.HasPrefix(got[0], "-NOAUTH") {
		t.Errorf("PING without AUTH = %q, want -NOAUTH…", got[0])
	}
	got := send(t, srv.Addr, "AUTH "+srv.Password, "SET k v", "GET k")
	want := []string{"+OK", "+OK", "$1"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d = %q, want %q", i, got[i], want[i])
		}
	}

	// Stop and Restart keep the address.
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", srv.Addr)
	}
	srv.Restart(t)
	if got := send(t, srv.Addr, "AUTH "+srv.Password, "PING"); got[1] != "+PONG" {
		t.Errorf("PING after Restart = %q, want +PONG", got[1])
	}
}

func TestStartTwice(t *testing.T) {
	a, b := redis.Start(t), redis.Start(t)
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("two servers share an address or directory: %s %s / %s %s", a.Addr, a.Dir, b.Addr, b.Dir)
	}
}
