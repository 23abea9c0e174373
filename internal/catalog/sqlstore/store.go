package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/errs"
)

var _ catalog.Store = (*Store)(nil)
var _ catalog.Tx = (*tx)(nil)

// BusyTimeout is how long a SQLite transaction waits for another process (a second server
// or the command line on the same file) to release the write lock before failing with
// errs.Unavailable.
const BusyTimeout = 10 * time.Second

// MaxPostgresConns bounds the connections one Store opens to PostgreSQL.
const MaxPostgresConns = 16

// Options configures a Store.
type Options struct {
	// Now is the clock that fixes each transaction's time; time.Now when nil.
	Now func() time.Time
}

// Store is a catalog.Store on SQLite or PostgreSQL. Safe for concurrent use.
type Store struct {
	db  *sql.DB
	d   dialect
	now func() time.Time
}

// Open opens the catalog named by dsn and brings its schema up to date:
//   - "postgres://…" or "postgresql://…": PostgreSQL (the pgx connection URL);
//   - "sqlite:///path/catalog.db" or a plain file path: SQLite, created when absent (its
//     directory must exist).
//
// Errors: errs.Invalid for a DSN it cannot use, errs.NotFound for a missing directory or
// database, errs.Unavailable when the database cannot be reached, errs.Unauthorized for
// refused credentials, errs.Conflict when the schema is newer than this build knows.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	const op = "sqlstore.Open"
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d = postgresDialect
		db, err = openPostgres(op, dsn)
	case strings.HasPrefix(dsn, "sqlite://"):
		d = sqliteDialect
		db, err = openSQLite(op, strings.TrimPrefix(dsn, "sqlite://"))
	case strings.Contains(dsn, "://"):
		return nil, errs.Errorf(op, errs.Invalid, "catalog %q: unknown scheme", redact(dsn)).
			WithHint("use postgres://user:password@host/db, sqlite:///path/catalog.db or a file path")
	default:
		d = sqliteDialect
		db, err = openSQLite(op, dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(op, err)
	}
	s := &Store{db: db, d: d, now: now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openSQLite opens the SQLite file at path.
//
// WAL mode lets readers (the API, the command line in another process) read while a
// transaction writes, and makes a commit one append to the log. Foreign keys are off by
// default in SQLite and are turned on so that a vault cannot name a site that does not exist.
// The pool holds one connection: SQLite has one writer at a time, and with several
// connections a transaction that reads and then writes fails with SQLITE_BUSY when another
// connection wrote meanwhile (waiting cannot resolve it). One connection makes Go's pool
// queue this process's transactions instead; transactions begin IMMEDIATE (taking the write
// lock first) and wait up to BusyTimeout for other processes on the same file.
// Synchronous stays FULL: jobs and the event outbox are not rebuilt from the vaults, so a
// committed transaction must survive a power loss.
func openSQLite(op, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errs.Errorf(op, errs.Invalid, "empty catalog path").
			WithHint("give a file path such as /var/lib/rewind/catalog.db")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, errs.Errorf(op, errs.Invalid, "catalog path %q holds '?' or '#'", path).
			WithHint("choose a path without them")
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, errs.Errorf(op, errs.NotFound, "catalog directory %s does not exist", dir).
				WithHint("create the data directory first")
		}
	}
	q := fmt.Sprintf("?_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)",
		BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", path+q)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

func openPostgres(op, dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included: say only where it failed.
		return nil, errs.Errorf(op, errs.Invalid, "catalog URL %s is not a valid PostgreSQL URL", redact(dsn)).
			WithHint("use postgres://user:password@host:5432/db?sslmode=disable")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(MaxPostgresConns)
	db.SetMaxIdleConns(MaxPostgresConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// redact removes the password from a URL-shaped DSN for error messages.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	at := strings.LastIndex(rest, "@")
	if slash := strings.Index(rest, "/"); at < 0 || (slash >= 0 && slash < at) {
		return dsn
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return classify("sqlstore.Close", err)
	}
	return nil
}

// DB returns the store's database handle, for components that keep their own tables in
// the catalog database (the job queue). On SQLite it is the store's one connection, so
// their statements queue behind the catalog's transactions rather than failing busy. The
// caller must not close it nor change its pool settings.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Tx implements catalog.Store.
func (s *Store) Tx(ctx context.Context, fn func(catalog.Tx) error) (err error) {
	const op = "catalog.Tx"
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(op, err)
	}
	t := &tx{tx: sqlTx, d: s.d, now: catalog.Micro(s.now())}
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return classify(op, err)
	}
	return nil
}

// tx is one transaction; its methods live in config.go, jobs.go, points.go, events.go and executions.go.
type tx struct {
	tx  *sql.Tx
	d   dialect
	now time.Time
}

func (t *tx) Now() time.Time { return t.now }

// exec runs a statement and classifies its error.
func (t *tx) exec(ctx context.Context, op, query string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, classify(op, err)
	}
	return res, nil
}

// affected returns how many rows res changed.
func affected(op string, res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, classify(op, err)
	}
	return n, nil
}

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, t *tx, op, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, classify(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(op, err)
	}
	return out, nil
}

// queryOne runs a query expected to return at most one row; errs.NotFound with what when
// it returns none.
func queryOne[T any](ctx context.Context, t *tx, op, what, query string, args []any, scan func(scanner) (T, error)) (T, error) {
	v, err := scan(t.tx.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, errs.Errorf(op, errs.NotFound, "%s not found", what)
	}
	if err != nil {
		var zero T
		return zero, classify(op, err)
	}
	return v, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }
