package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rewind-dr/rewind/internal/protect/postgres"
	pgtest "github.com/rewind-dr/rewind/internal/testenv/postgres"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

var ctx = context.Background()

// openVault makes a vault on a memory backend and takes its shared lock.
func openVault(t testing.TB) (*vault.Repository, postgres.Vault) {
	t.Helper()
	r, err := vault.Init(ctx, mem.New(), "pw", vault.InitOptions{KDF: vault.KDFParams{Time: 1, Memory: 64, Threads: 1},
		Runtime: vault.OpenOptions{Host: "test-host"}})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Unlock(ctx); r.Close() })
	return r, postgres.FromVault(r)
}

func startServer(t testing.TB) *pgtest.Server {
	t.Helper()
	return pgtest.Start(t, pgtest.Options{ReplicationUser: true, Conf: map[string]string{
		"track_commit_timestamp": "on",
		"wal_keep_size":          "'256MB'",
	}})
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

func exec(t testing.TB, c *pgx.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.Exec(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// tempDir returns a directory the postgres user can reach (t.TempDir's parent is private
// to root).
func tempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rewind-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// startRestored starts PostgreSQL on a restored data directory, waits until recovery ended
// and returns the ids in table t.
func startRestored(t testing.TB, src *pgtest.Server, dir string) []int {
	t.Helper()
	s := pgtest.StartDataDir(t, dir, src.Password, map[string]string{"archive_mode": "off"})
	c := connect(t, s.URL(pgtest.DefaultDatabase))
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rec bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			t.Fatalf("restored server: %v\n%s", err, s.Output())
		}
		if !rec {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored server still in recovery after 60s:\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ids []int
	rows, err := c.Query(ctx, "SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatalf("restored server: %v\n%s", err, s.Output())
	}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Errorf("stop restored server: %v", err)
	}
	return ids
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
