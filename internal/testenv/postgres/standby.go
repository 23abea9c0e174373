package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartStandby makes a streaming hot standby of primary and starts it: pg_basebackup
// (--write-recovery-conf, fast checkpoint, WAL streamed during the copy) run as the server's
// user into a new temporary directory, then the server on its own free loopback port. The
// primary must have been started with Options.ReplicationUser; the standby connects as that
// role and the returned Server carries the same role and superuser password (roles are
// replicated). conf settings are appended to the standby's postgresql.conf. The standby is
// stopped and its directory removed when the test ends. It fails the test on error.
func StartStandby(t testing.TB, primary *Server, conf map[string]string) *Server {
	t.Helper()
	if primary.ReplicationUser == "" {
		t.Fatalf("postgres: StartStandby needs a primary started with Options.ReplicationUser")
	}
	dir, err := os.MkdirTemp("", "rewind-pg-standby-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first so that it runs after StartDataDir's cleanup has stopped the server.
	t.Cleanup(func() { os.RemoveAll(dir) })
	copier := &Server{bin: primary.bin, cred: primary.cred, Dir: dir}
	if err := copier.Chown(dir); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	out, err := copier.run(primary.Bin("pg_basebackup"), "--pgdata", data, "--dbname", primary.ReplicationURL(),
		"--write-recovery-conf", "--checkpoint=fast", "--wal-method=stream", "--no-sync")
	if err != nil {
		t.Fatalf("postgres: pg_basebackup of the primary on port %d: %v\n%s", primary.Port, err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "standby.signal")); err != nil {
		t.Fatalf("postgres: pg_basebackup --write-recovery-conf wrote no standby.signal: %v", err)
	}
	s := StartDataDir(t, data, primary.Password, conf)
	s.ReplicationUser, s.ReplicationPassword = primary.ReplicationUser, primary.ReplicationPassword
	return s
}

// WaitReplayed waits until the standby s has replayed the primary's WAL up to the LSN lsn
// ("0/3000148"), polling pg_last_wal_replay_lsn(), for at most timeout.
func (s *Server) WaitReplayed(ctx context.Context, lsn string, timeout time.Duration) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("standby on port %d: %w", s.Port, err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(timeout)
	for {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&done); err != nil {
			return fmt.Errorf("standby on port %d: %w", s.Port, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("standby on port %d has not replayed WAL up to %s after %v; output:\n%s", s.Port, lsn, timeout, s.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Promote promotes the standby s to a primary on a new timeline and waits (at most timeout)
// until it accepts writes.
func (s *Server) Promote(ctx context.Context, timeout time.Duration) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("standby on port %d: %w", s.Port, err)
	}
	defer conn.Close(ctx)
	var ok bool
	secs := max(int(timeout/time.Second), 1)
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, $1)", secs).Scan(&ok); err != nil {
		return fmt.Errorf("promote the standby on port %d: %w; output:\n%s", s.Port, err, s.Output())
	}
	if !ok {
		return fmt.Errorf("the standby on port %d was not promoted within %v; output:\n%s", s.Port, timeout, s.Output())
	}
	return nil
}
