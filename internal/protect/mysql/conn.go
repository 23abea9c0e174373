package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Names of the client tools, found on $PATH (Debian: mariadb-client, mariadb-backup).
const (
	toolClient = "mariadb"
	toolDump   = "mariadb-dump"
	toolBinlog = "mariadb-binlog"
	toolBackup = "mariadb-backup"
	toolStream = "mbstream"
)

// server is a parsed mysql:// URL.
type server struct {
	user, password string
	host, port     string // TCP address, when no socket is given
	socket         string // the unix socket (?socket=/path)
	display        string // the URL without its password
}

// parseURL parses mysql://user:password@host:port/[?socket=/run/mysqld/mysqld.sock]
// (mariadb:// is accepted too). The path (a database name) is ignored: the plugin always
// works on the whole server.
func parseURL(op, raw string) (server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return server{}, errs.Errorf(op, errs.Invalid, "MySQL URL %q is not valid", redact(raw)).
			WithHint("use mysql://user:password@host:3306/")
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return server{}, errs.Errorf(op, errs.Invalid, "MySQL URL scheme %q is not supported", u.Scheme).
			WithHint("use mysql://user:password@host:3306/")
	}
	s := server{socket: u.Query().Get("socket")}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	for name, v := range map[string]string{"user": s.user, "password": s.password, "socket": s.socket} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return server{}, errs.Errorf(op, errs.Invalid, "MySQL URL %s: the %s contains a line break or NUL", redact(raw), name).
				WithHint("choose credentials without control characters")
		}
	}
	if s.socket == "" {
		if u.Hostname() == "" {
			return server{}, errs.Errorf(op, errs.Invalid, "MySQL URL %q names no host", redact(raw)).
				WithHint("use mysql://user:password@host:3306/ or mysql://user@/?socket=/run/mysqld/mysqld.sock")
		}
		s.host, s.port = u.Hostname(), u.Port()
		if s.port == "" {
			s.port = "3306"
		}
	}
	if s.user == "" {
		return server{}, errs.Errorf(op, errs.Invalid, "MySQL URL %s names no user", redact(raw)).
			WithHint("use mysql://user:password@host:3306/")
	}
	s.display = redact(raw)
	return s, nil
}

// redact returns raw without its password (and without its query, which may hold one).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// addr is the server's host:port, or its socket path.
func (s server) addr() string {
	if s.socket != "" {
		return s.socket
	}
	return net.JoinHostPort(s.host, s.port)
}

// dsn is the go-sql-driver DSN for s.
func (s server) dsn() string {
	c := driver.NewConfig()
	c.User, c.Passwd = s.user, s.password
	if s.socket != "" {
		c.Net, c.Addr = "unix", s.socket
	} else {
		c.Net, c.Addr = "tcp", s.addr()
	}
	c.Timeout = 10 * time.Second
	c.ParseTime = false
	return c.FormatDSN()
}

// open connects to s and pings it. Errors: errs.Unauthorized, errs.Unavailable.
func (s server) open(ctx context.Context, op string) (*sql.DB, error) {
	db, err := sql.Open("mysql", s.dsn())
	if err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("%s: %w", s.display, err))
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, s.classify(op, err)
	}
	return db, nil
}

// MariaDB/MySQL error numbers the plugin tells apart.
const (
	erAccessDenied    = 1045 // ER_ACCESS_DENIED_ERROR
	erDBAccessDenied  = 1044 // ER_DBACCESS_DENIED_ERROR
	erSpecificAccess  = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR
	erTableAccessDeny = 1142 // ER_TABLEACCESS_DENIED_ERROR
)

// classify maps a driver error to a Kind by its error number.
func (s server) classify(op string, err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case erAccessDenied, erDBAccessDenied, erSpecificAccess, erTableAccessDeny:
			return errs.E(op, errs.Unauthorized, fmt.Errorf("%s: %w", s.display, err)).
				WithHint("check the user and password in the URL and the user's privileges (see docs/resources/mysql.md)")
		}
		return errs.E(op, errs.Unavailable, fmt.Errorf("%s: %w", s.display, err))
	}
	if errors.Is(err, context.Canceled) {
		return errs.E(op, errs.Canceled, err)
	}
	return errs.E(op, errs.Unavailable, fmt.Errorf("%s: %w", s.display, err)).
		WithHint("check that the server is running and reachable")
}

// optionValue quotes v for a MariaDB option file.
func optionValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// credentials is a temporary option file holding s's connection settings, so that the
// tools never see a password on their command line (where ps shows it).
type credentials struct {
	dir, path string
}

// writeCredentials writes a [client] option file, mode 0600, in a new private directory.
func (s server) writeCredentials(op string) (*credentials, error) {
	dir, err := os.MkdirTemp("", "rewind-mysql-")
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("temporary directory: %w", err))
	}
	var b strings.Builder
	b.WriteString("[client]\n")
	fmt.Fprintf(&b, "user=%s\n", optionValue(s.user))
	fmt.Fprintf(&b, "password=%s\n", optionValue(s.password))
	if s.socket != "" {
		fmt.Fprintf(&b, "socket=%s\nprotocol=SOCKET\n", optionValue(s.socket))
	} else {
		fmt.Fprintf(&b, "host=%s\nport=%s\nprotocol=TCP\n", optionValue(s.host), s.port)
	}
	p := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("write option file: %w", err))
	}
	return &credentials{dir: dir, path: p}, nil
}

func (c *credentials) remove() { os.RemoveAll(c.dir) }

// toolEnv is the environment of the client tools: the caller's, without the variables
// that would change where they connect or leak a password, and in UTC (mariadb-binlog
// reads --stop-datetime in the local time zone).
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_UNIX_PORT", "TZ", "MYSQL_HISTFILE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "TZ=UTC")
}

// lookTool finds a client tool. Errors: errs.Unavailable with how to install it.
func lookTool(op, name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		pkg := "mariadb-client"
		if name == toolBackup || name == toolStream {
			pkg = "mariadb-backup"
		}
		return "", errs.Errorf(op, errs.Unavailable, "%s is not installed: %v", name, err).
			WithHint("install it: apt-get install -y " + pkg)
	}
	return p, nil
}

// toolCommand returns a command running tool with the option file first (the tools
// require --defaults-extra-file to be the first argument). The arguments never hold a
// password.
func toolCommand(ctx context.Context, op, tool string, cred *credentials, args ...string) (*exec.Cmd, error) {
	p, err := lookTool(op, tool)
	if err != nil {
		return nil, err
	}
	all := make([]string, 0, len(args)+1)
	if cred != nil {
		all = append(all, "--defaults-extra-file="+cred.path)
	}
	all = append(all, args...)
	cmd := exec.CommandContext(ctx, p, all...)
	cmd.Env = toolEnv()
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// tail keeps the last bytes written to it, for error messages from a tool's stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, []byte("?"))))
}

// toolError describes a failed tool run.
func toolError(op, tool string, err error, stderr *tail) error {
	msg := stderr.String()
	if msg == "" {
		msg = "(no output)"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return errs.Errorf(op, errs.Unavailable, "%s failed (%v): %s", tool, ee.ProcessState, msg)
	}
	return errs.Errorf(op, errs.Unavailable, "%s: %v: %s", tool, err, msg)
}
