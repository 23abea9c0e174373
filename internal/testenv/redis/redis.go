package redis

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/testenv"
)

// EnvServer names the environment variable that may point at the redis-server binary.
const EnvServer = "REWIND_REDIS_SERVER"

const installHint = "install Redis with `apt-get install -y redis-server` or point $" + EnvServer +
	" at a redis-server binary"

// Server is a running Redis server.
type Server struct {
	Addr     string // host:port on 127.0.0.1
	URL      string // redis://:password@host:port
	Dir      string // the temporary directory holding the configuration, data and log
	Password string

	bin string

	proc testenv.Process
}

// Binary returns the path of redis-server, or an error saying how to install it.
func Binary() (string, error) {
	if p := os.Getenv(EnvServer); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %v; %s", EnvServer, p, err, installHint)
		}
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on $PATH; %s", installHint)
	}
	return p, nil
}

// Start starts a server and registers its shutdown with t.Cleanup. It fails the test if
// redis-server is missing or does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	dir, err := os.MkdirTemp("", "rewind-redis-")
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	s := &Server{bin: bin, Dir: dir, Password: testenv.RandomHex(16)}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("redis: stop: %v", err)
		}
		os.RemoveAll(s.Dir)
	})
	// The free port is found by binding and releasing it, so another process may take it
	// before the server binds; try a few ports.
	for attempt := 0; ; attempt++ {
		var port int
		port, err = testenv.FreePort()
		if err == nil {
			s.setAddr(port)
			err = s.writeConfig(port)
		}
		if err == nil {
			err = s.start()
		}
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	return s
}

func (s *Server) setAddr(port int) {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	u := url.URL{Scheme: "redis", User: url.UserPassword("", s.Password), Host: s.Addr}
	s.URL = u.String()
}

func (s *Server) configPath() string { return filepath.Join(s.Dir, "redis.conf") }

// writeConfig writes the configuration: loopback only, a password, no persistence.
func (s *Server) writeConfig(port int) error {
	conf := strings.Join([]string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(port),
		"dir " + s.Dir,
		"requirepass " + s.Password,
		`save ""`,
		"appendonly no",
		"daemonize no",
		"protected-mode yes",
		"logfile \"\"",
		"loglevel warning",
	}, "\n") + "\n"
	return os.WriteFile(s.configPath(), []byte(conf), 0o600)
}

// start runs the server and waits until it answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.configPath())
	cmd.Dir = s.Dir
	// If the test binary dies, so does the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.proc.Start(cmd); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("redis-server on %s: %w; output:\n%s", s.Addr, err, s.proc.Output())
	}
	return nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if exited, err := s.proc.Exited(); exited {
			return fmt.Errorf("exited: %v", err)
		}
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering PING after %v: %w", timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// ping authenticates and sends PING with the inline protocol.
func (s *Server) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", s.Password); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(line); got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
	}
	return nil
}

// Output returns what the server wrote to its log so far, for failure messages.
func (s *Server) Output() string { return s.proc.Output() }

// Stop shuts the server down (SIGTERM; killed after 20 s) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	return s.proc.Stop(testenv.StopStep{Signal: syscall.SIGTERM, Wait: 20 * time.Second})
}

// Restart starts a stopped server again on the same port. It fails the test if the server
// does not come up.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatalf("redis: stop: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("redis: %v", err)
	}
}
