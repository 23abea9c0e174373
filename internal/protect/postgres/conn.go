package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/rewind-dr/rewind/internal/errs"
)

// source is an open physical replication connection and what IDENTIFY_SYSTEM said.
type source struct {
	conn     *pgconn.PgConn
	systemID string
	timeline uint32
	xlogPos  LSN
	segSize  uint64
	version  int // server_version_num
}

// redact hides the password of a postgres:// URL for messages.
func redact(src string) string {
	u, err := url.Parse(src)
	if err != nil || u.User == nil {
		return src
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// connect opens a physical replication connection to src and identifies the system.
// Errors: errs.Invalid (bad URL, server too old), errs.Unauthorized, errs.Unavailable.
func connect(ctx context.Context, op, src string) (*source, error) {
	if !strings.HasPrefix(src, "postgres://") && !strings.HasPrefix(src, "postgresql://") {
		return nil, errs.Errorf(op, errs.Invalid, "source %q is not a postgres:// URL", redact(src)).
			WithHint("give the cluster as postgres://user:password@host:port/?sslmode=...")
	}
	cfg, err := pgconn.ParseConfig(src)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("source %s: %w", redact(src), err))
	}
	// A physical replication connection: replication commands only, no database.
	cfg.RuntimeParams["replication"] = "true"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "rewind"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		kind := errs.Unavailable
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000" || pe.Code == "42501") {
			kind = errs.Unauthorized
		}
		return nil, errs.E(op, kind, fmt.Errorf("connect to %s: %w", redact(src), err)).
			WithHint("the role needs the REPLICATION attribute and pg_hba.conf a 'replication' line for this host")
	}
	s := &source{conn: conn}
	fail := func(err error) (*source, error) {
		conn.Close(context.Background())
		return nil, err
	}
	id, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return fail(errs.E(op, errs.Unavailable, fmt.Errorf("IDENTIFY_SYSTEM on %s: %w", redact(src), err)))
	}
	s.systemID, s.timeline, s.xlogPos = id.SystemID, uint32(id.Timeline), id.XLogPos
	seg, err := s.show(ctx, "wal_segment_size")
	if err == nil {
		s.segSize, err = parseSize(seg)
	}
	if err == nil && !validSegmentSize(s.segSize) {
		err = fmt.Errorf("wal_segment_size %d is not a power of two between 1MB and 1GB", s.segSize)
	}
	if err != nil {
		return fail(errs.E(op, errs.Unavailable, fmt.Errorf("%s: %w", redact(src), err)))
	}
	v, err := s.show(ctx, "server_version_num")
	if err == nil {
		s.version, err = strconv.Atoi(v)
	}
	if err != nil {
		return fail(errs.E(op, errs.Unavailable, fmt.Errorf("%s: server_version_num: %w", redact(src), err)))
	}
	if s.version < 150000 {
		return fail(errs.Errorf(op, errs.Invalid, "%s runs PostgreSQL %d; Rewind needs 15 or newer", redact(src), s.version/10000).
			WithHint("upgrade the server, or back it up with files + pg_backup_start"))
	}
	return s, nil
}

// show runs SHOW name on the replication connection.
func (s *source) show(ctx context.Context, name string) (string, error) {
	res, err := s.conn.Exec(ctx, "SHOW "+name).ReadAll()
	if err != nil {
		return "", fmt.Errorf("SHOW %s: %w", name, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW %s: unexpected result", name)
	}
	return string(res[0].Rows[0][0]), nil
}

func (s *source) close() { s.conn.Close(context.Background()) }

// pgErrKind classifies a server error by its SQLSTATE.
func pgErrKind(err error) errs.Kind {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "58P01": // undefined_file: requested WAL segment has already been removed
			return errs.NotFound
		case strings.HasPrefix(pe.Code, "28"), pe.Code == "42501":
			return errs.Unauthorized
		case strings.HasPrefix(pe.Code, "42"), strings.HasPrefix(pe.Code, "22"):
			return errs.Invalid
		case pe.Code == "55000": // object_not_in_prerequisite_state
			return errs.Conflict
		}
	}
	if errs.KindOf(err) != errs.Other {
		return errs.KindOf(err)
	}
	return errs.Unavailable
}

func pgconnError(m *pgproto3.ErrorResponse) error { return pgconn.ErrorResponseToPgError(m) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
