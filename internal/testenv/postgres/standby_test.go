package postgres_test

import (
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/testenv/postgres"
)

// TestStandby makes a standby, checks that it replays the primary's writes and refuses its
// own, then promotes it and writes on the new timeline.
func TestStandby(t *testing.T) {
	primary := postgres.Start(t, postgres.Options{ReplicationUser: true})
	p := connect(t, primary.URL(postgres.DefaultDatabase))
	if _, err := p.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	standby := postgres.StartStandby(t, primary, nil)
	if standby.Port == primary.Port || standby.ReplicationUser != primary.ReplicationUser {
		t.Fatalf("standby port %d (primary %d), replication user %q", standby.Port, primary.Port, standby.ReplicationUser)
	}
	if _, err := p.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	if err := standby.WaitReplayed(ctx, lsn, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	s := connect(t, standby.URL(postgres.DefaultDatabase))
	var n int
	if err := s.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("standby has %d rows (%v), want 2", n, err)
	}
	if _, err := s.Exec(ctx, "INSERT INTO t VALUES (3)"); err == nil {
		t.Fatal("the standby accepted a write before its promotion")
	}
	if err := primary.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var file string
	if err := s.QueryRow(ctx, "INSERT INTO t VALUES (3) RETURNING pg_walfile_name(pg_current_wal_lsn())").Scan(&file); err != nil {
		t.Fatalf("write after promotion: %v", err)
	}
	if file[:8] != "00000002" {
		t.Errorf("WAL file %s after promotion, want timeline 2", file)
	}
}
