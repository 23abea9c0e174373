package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rewind-dr/rewind/internal/errs"
)

// classify turns a database error into an *errs.Error, by driver code: SQLite extended result
// codes and PostgreSQL SQLSTATE classes. Errors that already are *errs.Error pass through.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.E(op, errs.Canceled, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return errs.E(op, postgresKind(pe.Code), err).WithHint(postgresHint(pe.Code))
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		k := sqliteKind(se.Code())
		ee := errs.E(op, k, err)
		if k == errs.Unavailable {
			ee = ee.WithHint("another process may hold the catalog's write lock, or its disk may be full or read-only")
		}
		return ee
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) {
		return errs.E(op, errs.Unavailable, err).WithHint("check that the catalog database is running and reachable")
	}
	if errors.Is(err, sql.ErrTxDone) || errors.Is(err, sql.ErrConnDone) {
		return errs.E(op, errs.Internal, err)
	}
	return errs.E(op, errs.Other, err)
}

func sqliteKind(code int) errs.Kind {
	switch code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return errs.Exists
	}
	switch code & 0xff { // the primary result code
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
		return errs.Invalid
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_NOLFS,
		sqlite3.SQLITE_PROTOCOL:
		return errs.Unavailable
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return errs.Corrupt
	case sqlite3.SQLITE_INTERRUPT:
		return errs.Canceled
	}
	return errs.Other
}

func postgresKind(code string) errs.Kind {
	switch code {
	case "23505": // unique_violation
		return errs.Exists
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return errs.Conflict
	case "3D000": // invalid_catalog_name: the database does not exist
		return errs.NotFound
	case "57014": // query_canceled
		return errs.Canceled
	case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return errs.Unavailable
	}
	switch {
	case strings.HasPrefix(code, "23"), strings.HasPrefix(code, "22"): // integrity, data exception
		return errs.Invalid
	case strings.HasPrefix(code, "28"): // invalid authorization
		return errs.Unauthorized
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"): // connection, resources
		return errs.Unavailable
	case strings.HasPrefix(code, "XX"): // internal error (data corrupted, index corrupted)
		return errs.Corrupt
	}
	return errs.Other
}

func postgresHint(code string) string {
	switch postgresKind(code) {
	case errs.Unauthorized:
		return "check the user and password in the catalog URL"
	case errs.NotFound:
		return "create the database (createdb) or fix its name in the catalog URL"
	case errs.Unavailable:
		return "check that PostgreSQL is running and accepts connections"
	case errs.Conflict:
		return "the transaction collided with another; run it again"
	}
	return ""
}
