package main

import (
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/redis"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Source kinds a command-line source argument can name.
const (
	sourceFiles    = "files"
	sourcePostgres = "postgres"
	sourceSQLite   = "sqlite"
	sourceRedis    = "redis"
	sourceMySQL    = "mysql"
)

// dbSource is a database named on the command line by a URL.
type dbSource struct {
	kind    string // sourcePostgres, sourceSQLite, sourceRedis or sourceMySQL
	url     string // as given (may hold a password: never print it, use display)
	display string // the URL with its password replaced
	path    string // sqlite: the database file's absolute path
	addr    string // postgres, redis, mysql: host:port (mysql: or the socket path)
	secrets []string
}

// urlScheme matches a URL's scheme and "://".
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// parseSource reads the source arguments of backup and protect: one database URL
// (postgres:// or postgresql://, sqlite:///abs/path, redis://, mysql:// or mariadb://), or
// paths, which are files (nil is returned). A URL mixed with other arguments, an unknown
// scheme, a MySQL URL without host or user and a relative SQLite path are refused with
// errs.Invalid.
func parseSource(op string, args []string) (*dbSource, error) {
	var src *dbSource
	for _, a := range args {
		m := urlScheme.FindStringSubmatch(a)
		if m == nil {
			continue
		}
		s, err := parseSourceURL(op, strings.ToLower(m[1]), a)
		if err != nil {
			return nil, err
		}
		if len(args) > 1 {
			return nil, errs.Errorf(op, errs.Invalid, "%s is a database source and cannot be mixed with other sources (%d given)", s.display, len(args)).
				WithHint("back up one database per command; back up files in a separate command")
		}
		src = s
	}
	return src, nil
}

func parseSourceURL(op, scheme, raw string) (*dbSource, error) {
	switch scheme {
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, errs.Errorf(op, errs.Invalid, "source %s is not a valid URL", redactURL(raw)).
				WithHint("write postgres://user:password@host:port/?sslmode=disable")
		}
		port := u.Port()
		if port == "" {
			port = "5432"
		}
		host := u.Hostname()
		if host == "" {
			host = "localhost"
		}
		return newDBSource(sourcePostgres, raw, u, net.JoinHostPort(host, port)), nil
	case "redis":
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, errs.Errorf(op, errs.Invalid, "source %s is not a valid Redis URL", redactURL(raw)).
				WithHint("write redis://[user:password@]host:port")
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		return newDBSource(sourceRedis, raw, u, net.JoinHostPort(u.Hostname(), port)), nil
	case "sqlite", "sqlite3":
		rest := raw[len(scheme)+len("://"):]
		if !strings.HasPrefix(rest, "/") {
			return nil, errs.Errorf(op, errs.Invalid, "SQLite source %q names a relative path", raw).
				WithHint("give the absolute path after three slashes, e.g. sqlite:///srv/app/app.db")
		}
		p := filepath.Clean(rest)
		return &dbSource{kind: sourceSQLite, url: raw, display: "sqlite://" + p, path: p}, nil
	case "mysql", "mariadb":
		return parseMySQLURL(op, raw)
	}
	return nil, errs.Errorf(op, errs.Invalid, "source scheme %q is not supported", scheme+"://").
		WithHint("a source is postgres://…, sqlite:///abs/path, redis://…, mysql://… or a file system path")
}

// parseMySQLURL reads mysql://user:password@host[:port]/ or
// mysql://user:password@/?socket=/path (mariadb:// alike). The path, a database name, is
// ignored: the whole server is protected.
func parseMySQLURL(op, raw string) (*dbSource, error) {
	const hint = "write mysql://user:password@host:3306/ or mysql://user:password@/?socket=/run/mysqld/mysqld.sock"
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "%s is not a valid MySQL URL", redactURL(raw)).WithHint(hint)
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, errs.Errorf(op, errs.Invalid, "MySQL URL %s names no user", redactURL(raw)).WithHint(hint)
	}
	addr := u.Query().Get("socket")
	if addr == "" {
		if u.Hostname() == "" {
			return nil, errs.Errorf(op, errs.Invalid, "MySQL URL %s names neither a host nor a socket", redactURL(raw)).WithHint(hint)
		}
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	} else if !filepath.IsAbs(addr) {
		return nil, errs.Errorf(op, errs.Invalid, "MySQL URL %s: socket %q is not an absolute path", redactURL(raw), addr).WithHint(hint)
	}
	return newDBSource(sourceMySQL, raw, u, addr), nil
}

// isMySQLURL reports whether s is a mysql:// or mariadb:// URL (a restore target).
func isMySQLURL(s string) bool {
	m := urlScheme.FindStringSubmatch(s)
	return m != nil && (strings.EqualFold(m[1], "mysql") || strings.EqualFold(m[1], "mariadb"))
}

func newDBSource(kind, raw string, u *url.URL, addr string) *dbSource {
	s := &dbSource{kind: kind, url: raw, display: redactURL(raw), addr: addr}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			s.secrets = append(s.secrets, pw)
		} else if kind == sourceRedis && u.User.Username() != "" {
			s.secrets = append(s.secrets, u.User.Username()) // redis://password@host
		}
	}
	if pw := u.Query().Get("password"); pw != "" {
		s.secrets = append(s.secrets, pw)
	}
	return s
}

// defaultResource is the resource name a database source is filed under when --resource is
// not given: postgres:HOST:PORT, sqlite:/abs/path, redis:HOST:PORT or mysql:HOST:PORT
// (mysql:/socket/path).
func (s *dbSource) defaultResource() string {
	if s.kind == sourceSQLite {
		return "sqlite:" + s.path
	}
	return s.kind + ":" + s.addr
}

// continuous reports whether the source can be protected continuously.
func (s *dbSource) continuous() bool {
	return s.kind == sourcePostgres || s.kind == sourceSQLite || s.kind == sourceMySQL
}

// scrub returns err with every secret of the source replaced, keeping its kind and hint, so
// that no message ever shows a password, whichever layer wrote it.
func (s *dbSource) scrub(err error) error {
	if err == nil || len(s.secrets) == 0 {
		return err
	}
	msg, hint := err.Error(), errs.HintOf(err)
	clean := func(t string) string {
		for _, sec := range s.secrets {
			t = strings.ReplaceAll(t, sec, "xxxxx")
			if esc := url.QueryEscape(sec); esc != sec {
				t = strings.ReplaceAll(t, esc, "xxxxx")
			}
			if esc := url.PathEscape(sec); esc != sec {
				t = strings.ReplaceAll(t, esc, "xxxxx")
			}
		}
		return t
	}
	if clean(msg) == msg && clean(hint) == hint {
		return err
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return exitWith(ee.code, errors.New(clean(msg)))
	}
	return errs.E("", errs.KindOf(err), errors.New(clean(msg))).WithHint(clean(hint))
}

// redactURL hides the password of a URL (user:password@, or redis://password@, or a
// password= parameter) for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if m := urlScheme.FindStringSubmatch(raw); m != nil {
			return m[0] + "(unparsable)"
		}
		return "(unparsable)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else if strings.EqualFold(u.Scheme, "redis") && u.User.Username() != "" {
			u.User = url.User("xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dbKindOf returns the source kind whose plugin restores points of kind k, or "".
func dbKindOf(k string) string {
	switch k {
	case postgres.KindBase, postgres.KindWAL:
		return sourcePostgres
	case sqlite.KindSnapshot, sqlite.KindWAL:
		return sourceSQLite
	case redis.KindRDB:
		return sourceRedis
	case mysql.KindDump, mysql.KindPhysical, mysql.KindBinlog:
		return sourceMySQL
	case vault.KindFiles, vault.KindStream:
		return sourceFiles
	}
	return ""
}

// refuseFlags returns errs.Invalid naming the first of the given flags that was set: it
// does not apply to what (e.g. "a SQLite restore").
func refuseFlags(cmd *cobra.Command, what string, names ...string) error {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return errs.Errorf(cmd.Name(), errs.Invalid, "--%s does not apply to %s", n, what).
				WithHint("leave out --" + n + "; 'rewind help " + cmd.Name() + "' lists which options apply to which sources")
		}
	}
	return nil
}
