package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rewind-dr/rewind/internal/testenv"
)

// EnvBin names the environment variable that may point at a directory holding mariadbd
// and mariadb-install-db.
const EnvBin = "REWIND_MARIADB_BIN"

const installHint = "install MariaDB with `apt-get install -y mariadb-server` or point $" + EnvBin +
	" at a directory holding mariadbd and mariadb-install-db"

// DefaultDatabase is the database Start creates; User owns it.
const DefaultDatabase = "rewind"

// User is the name of the password-protected user Start creates, allowed from loopback.
const User = "rewind"

// Server is a running MariaDB server.
type Server struct {
	Addr     string // host:port on 127.0.0.1
	URL      string // mysql://rewind:password@host:port/rewind
	Socket   string // the unix socket; root connects through it without a password
	Dir      string // the temporary directory holding everything
	DataDir  string
	Password string // User's password

	server, installDB string
	cred              *syscall.Credential // nil when not running as root

	opts Options // the server flags of every start (StartWith), kept across Restart
	proc testenv.Process
}

// Binaries returns the paths of mariadbd and mariadb-install-db, or an error saying how to
// install them.
func Binaries() (server, installDB string, err error) {
	if d := os.Getenv(EnvBin); d != "" {
		server, installDB = filepath.Join(d, "mariadbd"), filepath.Join(d, "mariadb-install-db")
		for _, p := range []string{server, installDB} {
			if _, err := os.Stat(p); err != nil {
				return "", "", fmt.Errorf("$%s=%s: %v; %s", EnvBin, d, err, installHint)
			}
		}
		return server, installDB, nil
	}
	find := func(name string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		p := filepath.Join("/usr/sbin", name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found on $PATH or in /usr/sbin; %s", name, installHint)
		}
		return p, nil
	}
	if server, err = find("mariadbd"); err != nil {
		return "", "", err
	}
	if installDB, err = find("mariadb-install-db"); err != nil {
		return "", "", err
	}
	return server, installDB, nil
}

// Start starts a server with the database DefaultDatabase owned by User and registers its
// shutdown with t.Cleanup. It fails the test if the binaries are missing or the server
// does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	server, installDB, err := Binaries()
	if err != nil {
		t.Fatalf("mariadb: %v", err)
	}
	s := &Server{server: server, installDB: installDB, Password: testenv.RandomHex(16)}
	if err := s.init(); err != nil {
		if s.Dir != "" {
			os.RemoveAll(s.Dir)
		}
		t.Fatalf("mariadb: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("mariadb: stop: %v", err)
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
			err = s.start()
		}
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("mariadb: %v", err)
	}
	if err := s.setup(); err != nil {
		t.Fatalf("mariadb: %v; output:\n%s", err, s.Output())
	}
	return s
}

func (s *Server) setAddr(port int) {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	u := url.URL{Scheme: "mysql", User: url.UserPassword(User, s.Password), Host: s.Addr, Path: "/" + DefaultDatabase}
	s.URL = u.String()
}

// init makes the directory and runs mariadb-install-db.
func (s *Server) init() error {
	dir, err := os.MkdirTemp("", "rewind-mariadb-")
	if err != nil {
		return err
	}
	s.Dir = dir
	s.DataDir = filepath.Join(dir, "data")
	s.Socket = filepath.Join(dir, "mariadb.sock")
	for _, d := range []string{s.DataDir, filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		// Run as the mysql user rather than root, as the packaged server does.
		u, err := user.Lookup("mysql")
		if err != nil {
			return fmt.Errorf("running as root needs the user mysql (made by the Debian package): %v; %s", err, installHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, s.DataDir, filepath.Join(dir, "tmp")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	out, err := s.command(s.installDB, "--no-defaults", "--datadir="+s.DataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
		"--tmpdir="+filepath.Join(dir, "tmp")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	return nil
}

// command returns a command that runs as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Dir, "LC_ALL=C", "TZ=UTC"}
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// start runs the server with s.opts's flags and waits until it accepts connections on its
// socket.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	id := s.opts.ServerID
	if id == 0 {
		id = 1
	}
	args := []string{"--no-defaults",
		"--datadir=" + s.DataDir,
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.Dir, "mariadbd.pid"),
		"--tmpdir=" + filepath.Join(s.Dir, "tmp"),
		"--bind-address=127.0.0.1",
		"--port=" + port,
		"--skip-name-resolve",
		"--server-id=" + strconv.Itoa(id),
		"--innodb-buffer-pool-size=16M",
		"--innodb-flush-log-at-trx-commit=0", // a test server: speed over durability
		"--max-connections=200",
	}
	if s.opts.LogBin {
		args = append(args, "--log-bin="+BinlogBase, "--binlog-format=ROW", "--binlog-checksum=CRC32")
	} else {
		args = append(args, "--skip-log-bin")
	}
	cmd := s.command(s.server, args...)
	// If the test binary dies, so does the server.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := s.proc.Start(cmd); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("mariadbd on %s: %w; output:\n%s", s.Addr, err, s.proc.Output())
	}
	return nil
}

// RootDSN returns a go-sql-driver DSN for root over the unix socket.
func (s *Server) RootDSN() string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "unix"
	c.Addr = s.Socket
	return c.FormatDSN()
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if exited, err := s.proc.Exited(); exited {
			return fmt.Errorf("exited: %v", err)
		}
		err := s.pingRoot()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) pingRoot() error {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// setup creates the default database and the user.
func (s *Server) setup() error {
	return s.Exec(context.Background(),
		"CREATE DATABASE "+DefaultDatabase,
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", User, s.Password),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'127.0.0.1'", DefaultDatabase, User),
	)
}

// Exec runs statements as root over the unix socket.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Output returns what the server wrote to its log so far, for failure messages.
func (s *Server) Output() string { return s.proc.Output() }

// Stop shuts the server down (SIGTERM: a normal shutdown; killed after 30 s) and waits for
// it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	return s.proc.Stop(testenv.StopStep{Signal: syscall.SIGTERM, Wait: 30 * time.Second})
}

// Restart starts a stopped server again on the same data directory and port. It fails
// the test if the server does not come up.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatalf("mariadb: stop: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("mariadb: %v", err)
	}
}
