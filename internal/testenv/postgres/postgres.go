package postgres

import (
	"context"
	"fmt"
	"github.com/rewind-dr/rewind/internal/testenv"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBin names the environment variable that may point at PostgreSQL's bin directory.
const EnvBin = "REWIND_PG_BIN"

const installHint = "install PostgreSQL with `apt-get install -y postgresql` (binaries in " +
	"/usr/lib/postgresql/<version>/bin) or point $" + EnvBin + " at a bin directory holding initdb and postgres"

// Superuser is the name of the server's superuser.
const Superuser = "postgres"

// DefaultDatabase is the database Start creates.
const DefaultDatabase = "rewind"

// Options configures a server.
type Options struct {
	// Conf holds postgresql.conf settings added after the defaults (and so overriding
	// them), e.g. {"archive_mode": "on", "archive_command": "cp %p /dir/%f"}. Values are
	// written as given: quote strings ('…') where postgresql.conf needs it.
	Conf map[string]string
	// ReplicationUser creates the role Server.ReplicationUser with REPLICATION and a
	// password; pg_hba allows replication connections from loopback.
	ReplicationUser bool
}

// Server is a running PostgreSQL server.
type Server struct {
	Port      int
	Password  string // the superuser's password
	Dir       string // the temporary directory holding everything below
	DataDir   string
	SocketDir string
	// ReplicationUser and ReplicationPassword name the replication role when
	// Options.ReplicationUser is set; empty otherwise.
	ReplicationUser     string
	ReplicationPassword string

	bin  string
	cred *syscall.Credential // nil when not running as root
	t    testing.TB

	proc testenv.Process
}

// BinDir returns the directory holding PostgreSQL's binaries, or an error saying how to
// install them.
func BinDir() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("$%s=%s holds no initdb: %v; %s", EnvBin, d, err, installHint)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL binaries not found in $%s or /usr/lib/postgresql/*/bin; %s", EnvBin, installHint)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Bin returns the path of one of the server's programs (psql, pg_basebackup, pg_ctl, …).
func (s *Server) Bin(name string) string { return filepath.Join(s.bin, name) }

// URL returns a connection URL for database db as the superuser, over TCP on loopback.
func (s *Server) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, s.Password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// ReplicationURL returns a URL for a replication connection as the replication role
// (Options.ReplicationUser), for pg_basebackup or pg_receivewal -d.
func (s *Server) ReplicationURL() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.ReplicationUser, s.ReplicationPassword),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		RawQuery: "sslmode=disable&replication=true",
	}
	return u.String()
}

// Start starts a server with the database DefaultDatabase and registers its shutdown with
// t.Cleanup. It fails the test if the binaries are missing or the server does not come up.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	s := &Server{bin: bin, t: t, Password: testenv.RandomHex(16)}
	if err := s.init(opts); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("postgres: stop: %v", err)
		}
		os.RemoveAll(s.Dir)
	})
	// The free port is found by binding and releasing it, so another process may take it
	// before the server binds; try a few ports.
	for attempt := 0; ; attempt++ {
		s.Port, err = testenv.FreePort()
		if err == nil {
			err = s.writePort()
		}
		if err == nil {
			err = s.start()
		}
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if err := s.setup(opts); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return s
}

// init makes the directory, runs initdb and writes the configuration.
func (s *Server) init(opts Options) error {
	dir, err := os.MkdirTemp("", "rewind-pg-")
	if err != nil {
		return err
	}
	s.Dir = dir
	s.DataDir = filepath.Join(dir, "data")
	s.SocketDir = filepath.Join(dir, "run")
	if err := os.Mkdir(s.SocketDir, 0o700); err != nil {
		return err
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: hand the directory to the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the user postgres (made by the Debian package): %v; %s", err, installHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, s.SocketDir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	out, err := s.run(s.Bin("initdb"), "-D", s.DataDir, "-U", Superuser, "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	conf := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": quote(s.SocketDir),
		"fsync":                   "off", // a test server: speed over durability
		"synchronous_commit":      "off",
		"max_connections":         "200",
		"shared_buffers":          "32MB",
		"log_min_messages":        "warning",
		"logging_collector":       "off",
	}
	for k, v := range opts.Conf {
		conf[k] = v
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# Added by Rewind's test server.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writePort sets the port in the configuration (the last setting of a name wins).
func (s *Server) writePort() error {
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "port = %d\n", s.Port); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// command returns a command that runs as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Dir, "LC_ALL=C", "TZ=UTC"}
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// run runs one of the PostgreSQL programs as the server's user and returns its output.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	return s.command(name, args...).CombinedOutput()
}

// start runs the server and waits until it accepts connections.
func (s *Server) start() error {
	cmd := s.command(s.Bin("postgres"), "-D", s.DataDir)
	// SIGQUIT is PostgreSQL's immediate shutdown: if the test binary dies, so does the server.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := s.proc.Start(cmd); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("postgres on port %d: %w; output:\n%s", s.Port, err, s.proc.Output())
	}
	return nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if exited, err := s.proc.Exited(); exited {
			return fmt.Errorf("exited early: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setup creates the default database and the replication role.
func (s *Server) setup(opts Options) error {
	stmts := []string{"CREATE DATABASE " + DefaultDatabase}
	if opts.ReplicationUser {
		s.ReplicationUser, s.ReplicationPassword = "replicator", testenv.RandomHex(16)
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s WITH LOGIN REPLICATION PASSWORD '%s'",
			s.ReplicationUser, s.ReplicationPassword))
	}
	return s.Exec(context.Background(), "postgres", stmts...)
}

// Exec runs statements in database db as the superuser.
func (s *Server) Exec(ctx context.Context, db string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// CreateDatabase creates a database with a fresh unique name and returns its URL. It fails
// the test on error.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := "test_" + testenv.RandomHex(8)
	if err := s.Exec(context.Background(), "postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return s.URL(name)
}

// Output returns what the server wrote to its log so far, for failure messages.
func (s *Server) Output() string { return s.proc.Output() }

// Stop shuts the server down (fast shutdown: open transactions are rolled back; then an
// immediate shutdown after 30 s) and waits for it to exit. Stopping a stopped server does
// nothing.
func (s *Server) Stop() error {
	return s.proc.Stop(testenv.StopStep{Signal: syscall.SIGINT, Wait: 30 * time.Second},
		testenv.StopStep{Signal: syscall.SIGQUIT, Wait: 10 * time.Second})
}

// Restart starts a stopped server again on the same data directory and port (after a test
// replaced the data directory with a restored one, for instance). It fails the test if the
// server does not come up.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatalf("postgres: stop: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("postgres: %v", err)
	}
}

// Chown gives path (and what is under it) to the server's user, so that files a test puts
// in the data directory or an archive directory are readable by the server.
func (s *Server) Chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(s.cred.Uid), int(s.cred.Gid))
	})
}
