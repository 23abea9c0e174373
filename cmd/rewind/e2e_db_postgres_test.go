package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rewind-dr/rewind/internal/protect/postgres"
	pgtest "github.com/rewind-dr/rewind/internal/testenv/postgres"
)

// TestE2EPostgres drives PostgreSQL protection through the binary: a base backup, WAL
// archived by the server's archive_command = 'rewind wal-push …', 'rewind protect' streaming
// while rows are committed, 'rewind points' showing the range, a restore --at a time between
// two commits started with PostgreSQL, and a restore to a named restore point whose server
// reads its WAL with restore_command = 'rewind wal-fetch …'.
func TestE2EPostgres(t *testing.T) {
	ctx := context.Background()
	const resource = "orders-db"
	e, dir := newPostgresUserEnv(t)
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vaultFlags := fmt.Sprintf("--vault %s --password-file %s --resource %s", e.vault, pwFile, resource)
	srv := pgtest.Start(t, pgtest.Options{ReplicationUser: true, Conf: map[string]string{
		"track_commit_timestamp": "on",
		"wal_keep_size":          "'256MB'",
		"archive_mode":           "on",
		"archive_command":        fmt.Sprintf("'%s wal-push %s %%p'", rewindBin, vaultFlags),
	}})
	if err := srv.Chown(pwFile); err != nil {
		t.Fatal(err)
	}
	e.mustDB("init")
	db, err := pgx.Connect(ctx, srv.URL(pgtest.DefaultDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	sql := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sql("CREATE TABLE t (id int PRIMARY KEY)")
	src := srv.ReplicationURL()

	// Bad combinations are refused before anything is read (exit 2), without the password.
	r := e.wantExit(exitUsage, "backup", "--resource", resource, "--exclude", "*.tmp", src)
	r2 := e.wantExit(exitUsage, "backup", src, "/etc")
	r3 := e.wantExit(exitUsage, "backup", "mysql://root:hunter2@127.0.0.1/shop")
	if !strings.Contains(r3.stderr, "MySQL/MariaDB is not supported yet") {
		t.Errorf("mysql:// refusal: %s", r3.stderr)
	}
	noSecret(t, srv.ReplicationPassword, r.stderr, r2.stderr)
	noSecret(t, "hunter2", r3.stderr)

	out := e.mustDB("backup", "--resource", resource, src)
	if !strings.Contains(out, "postgres-base") || !strings.Contains(out, "consistent there") {
		t.Errorf("backup output:\n%s", out)
	}
	noSecret(t, srv.ReplicationPassword, out)

	p := e.startProtect("--resource", resource, "--flush-every", "100ms", src)
	p.waitFor("the first flush", func(l map[string]any) bool { return l["message_type"] == "flush" })
	commits := map[int]time.Time{}
	var ts time.Time
	for i := 1; i <= 10; i++ {
		sql("INSERT INTO t VALUES ($1)", i)
		if err := db.QueryRow(ctx, "SELECT pg_xact_commit_timestamp(xmin) FROM t WHERE id = $1", i).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		commits[i] = ts
		if i == 7 {
			sql("SELECT pg_create_restore_point('after-7')")
		}
		time.Sleep(30 * time.Millisecond)
	}
	var endText, segName string
	if err := db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, pg_walfile_name(pg_current_wal_lsn())").Scan(&endText, &segName); err != nil {
		t.Fatal(err)
	}
	end, _ := postgres.ParseLSN(endText)
	p.waitFor("WAL up to "+endText, func(l map[string]any) bool {
		s, _ := l["end_lsn"].(string)
		got, err := postgres.ParseLSN(s)
		return l["message_type"] == "flush" && err == nil && got >= end
	})
	p.stop()
	for _, l := range p.all() {
		noSecret(t, srv.ReplicationPassword, fmt.Sprint(l))
	}

	// The server archives the segment through 'rewind wal-push' once it is switched.
	sql("SELECT pg_switch_wal()")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var archived string
		var failed int64
		if err := db.QueryRow(ctx, "SELECT coalesce(last_archived_wal, ''), failed_count FROM pg_stat_archiver").Scan(&archived, &failed); err != nil {
			t.Fatal(err)
		}
		if failed > 0 {
			t.Fatalf("archive_command failed %d times:\n%s", failed, srv.Output())
		}
		if archived >= segName {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not archived after 30s (last %q):\n%s", segName, archived, srv.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fetched := filepath.Join(dir, segName)
	e.mustDB("wal-fetch", "--resource", resource, segName, fetched)
	if fi, err := os.Stat(fetched); err != nil || fi.Size() != 16<<20 {
		t.Fatalf("wal-fetch wrote %v, %v; want a 16 MiB segment", fi, err)
	}
	e.mustDB("wal-push", "--resource", resource, fetched) // identical content: accepted, nothing stored
	missing := filepath.Join(dir, "missing")
	e.wantExit(exitNotFound, "wal-fetch", "--resource", resource, "0000000100000099000000FF", missing)
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed wal-fetch left %s: %v", missing, err)
	}
	e.wantExit(exitUsage, "wal-fetch", segName, fetched) // no --resource

	// points shows the restorable range: one span from the base, no gap, covering the commits.
	rng := e.restorable(resource)
	spans, _ := rng["spans"].([]any)
	if rng["kind"] != "postgres" || len(spans) != 1 || rng["gaps"] != nil {
		t.Fatalf("restorable %v: want one postgres span and no gap", rng)
	}
	span := spans[0].(map[string]any)
	to, _ := time.Parse(time.RFC3339Nano, span["to"].(string))
	if to.Before(commits[10]) {
		t.Errorf("restorable to %v, before the last commit %v", to, commits[10])
	}
	if table := e.mustDB("points", "--resource", resource); !strings.Contains(table, "restorable:") || !strings.Contains(table, "LSN") {
		t.Errorf("points table has no range:\n%s", table)
	}

	// Options that do not apply, and errors' exit codes.
	target := filepath.Join(dir, "bad")
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--overwrite", "--target", target)
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--at", "yesterday", "--target", target)
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--lsn", endText, "--xid", "1000", "--target", target)
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--include", "x", "--target", target)
	e.wantExit(exitNotFound, "restore", "ffffffff", "--target", target)
	e.wantExit(exitNotFound, "restore", "latest", "--resource", "no-such-db", "--target", target)
	wrong := e.command("points")
	wrong.Env = append(wrong.Env, "REWIND_PASSWORD=wrong")
	if err := wrong.Run(); wrong.ProcessState.ExitCode() != exitWrongKey {
		t.Errorf("wrong password: %v, want exit %d", err, exitWrongKey)
	}

	// Restore between the commits of rows 5 and 6 and start PostgreSQL on it.
	mid := commits[5].Add(commits[6].Sub(commits[5]) / 2)
	pgdata := filepath.Join(dir, "pgdata-at")
	out = e.mustDB("restore", "latest", "--resource", resource, "--at", mid.UTC().Format(time.RFC3339Nano), "--target", pgdata)
	if !strings.Contains(out, "pg_ctl -D "+pgdata+" start") {
		t.Errorf("restore output does not say how to start it:\n%s", out)
	}
	if got := restoredRows(t, srv, pgdata); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("restore --at between 5 and 6: rows %v", got)
	}

	// Restore to the restore point, fetching WAL through restore_command = 'rewind wal-fetch'
	// instead of the copied directory.
	pgdata = filepath.Join(dir, "pgdata-name")
	e.mustDB("restore", "latest", "--resource", resource, "--restore-point", "after-7", "--target", pgdata)
	if err := os.RemoveAll(filepath.Join(pgdata, "rewind_wal")); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("\nrestore_command = '%s wal-fetch %s %%f %%p'\n", rewindBin, vaultFlags)
	f, err := os.OpenFile(filepath.Join(pgdata, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	if got := restoredRows(t, srv, pgdata); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("restore --restore-point after-7 through wal-fetch: rows %v", got)
	}
}

// restoredRows starts PostgreSQL on a restored data directory, waits for the end of recovery
// and returns the ids of table t.
func restoredRows(t *testing.T, src *pgtest.Server, dir string) []int {
	t.Helper()
	ctx := context.Background()
	s := pgtest.StartDataDir(t, dir, src.Password, map[string]string{"archive_mode": "off"})
	c, err := pgx.Connect(ctx, s.URL(pgtest.DefaultDatabase))
	if err != nil {
		t.Fatalf("restored server: %v\n%s", err, s.Output())
	}
	defer c.Close(ctx)
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
	rows, err := c.Query(ctx, "SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatalf("restored server: %v\n%s", err, s.Output())
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Errorf("stop restored server: %v", err)
	}
	return ids
}
