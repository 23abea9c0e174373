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
	r3 := e.wantExit(exitUsage, "backup", "mysql://:hunter2@127.0.0.1/shop")
	if !strings.Contains(r3.stderr, "names no user") {
		t.Errorf("mysql:// without a user: %s", r3.stderr)
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

// protectedPostgres is a PostgreSQL server protected by 'rewind protect' (run as the
// server's user) into the env's vault after a base backup, with rows of table t committed
// one at a time.
type protectedPostgres struct {
	t        *testing.T
	e        *dbEnv
	dir      string
	resource string
	srv      *pgtest.Server
	db       *pgx.Conn
	p        *protectProc
	commits  map[int]time.Time // commit time of row i
}

func startProtectedPostgres(t *testing.T, resource string) *protectedPostgres {
	t.Helper()
	ctx := context.Background()
	e, dir := newPostgresUserEnv(t)
	srv := pgtest.Start(t, pgtest.Options{ReplicationUser: true, Conf: map[string]string{
		"track_commit_timestamp": "on",
		"wal_keep_size":          "'256MB'",
	}})
	e.mustDB("init")
	db, err := pgx.Connect(ctx, srv.URL(pgtest.DefaultDatabase))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	if _, err := db.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	e.mustDB("backup", "--resource", resource, srv.ReplicationURL())
	pg := &protectedPostgres{t: t, e: e, dir: dir, resource: resource, srv: srv, db: db, commits: map[int]time.Time{}}
	pg.p = e.startProtect("--resource", resource, "--flush-every", "100ms", srv.ReplicationURL())
	pg.p.waitFor("the first flush", func(l map[string]any) bool { return l["message_type"] == "flush" })
	return pg
}

// insert commits rows from..to one at a time and waits until 'rewind protect' has stored
// the WAL up to the position after the last; it returns that position.
func (pg *protectedPostgres) insert(from, to int) postgres.LSN {
	pg.t.Helper()
	ctx := context.Background()
	for i := from; i <= to; i++ {
		var ts time.Time
		if _, err := pg.db.Exec(ctx, "INSERT INTO t VALUES ($1)", i); err != nil {
			pg.t.Fatal(err)
		}
		if err := pg.db.QueryRow(ctx, "SELECT pg_xact_commit_timestamp(xmin) FROM t WHERE id = $1", i).Scan(&ts); err != nil {
			pg.t.Fatal(err)
		}
		pg.commits[i] = ts
		time.Sleep(30 * time.Millisecond) // spacing between the commits, for time targets
	}
	var text string
	if err := pg.db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
		pg.t.Fatal(err)
	}
	end, err := postgres.ParseLSN(text)
	if err != nil {
		pg.t.Fatal(err)
	}
	pg.p.waitFor("WAL up to "+text, func(l map[string]any) bool {
		got, err := postgres.ParseLSN(fmt.Sprint(l["end_lsn"]))
		return l["message_type"] == "flush" && err == nil && got >= end
	})
	return end
}

// between returns the time halfway between the commits of rows i and i+1, as --at takes it.
func (pg *protectedPostgres) between(i int) string {
	return pg.commits[i].Add(pg.commits[i+1].Sub(pg.commits[i]) / 2).UTC().Format(time.RFC3339Nano)
}

// TestE2EPostgresWALGap deletes one stored WAL point from the vault ('rewind forget'):
// 'rewind check' exits 13 naming the gap's LSN range and segment files, 'rewind points'
// shows it, a restore --at a time past the gap fails with exit 2 and a message naming the
// gap, and a restore to a time before it still starts with exactly the rows before it.
func TestE2EPostgresWALGap(t *testing.T) {
	const resource = "orders-db"
	pg := startProtectedPostgres(t, resource)
	e := pg.e
	afterThree := pg.insert(1, 3)
	pg.insert(4, 6)
	pg.insert(7, 9)
	pg.p.stop()
	e.mustDB("check") // continuous so far

	// The first WAL point after row 3's WAL: it holds WAL written after row 3 and before
	// row 7 (rows 7–9 were inserted once the WAL up to row 6 was stored).
	var gapPoint string
	var from, to postgres.LSN
	for _, l := range pg.p.all() {
		if l["message_type"] != "flush" {
			continue
		}
		s, err1 := postgres.ParseLSN(fmt.Sprint(l["start_lsn"]))
		en, err2 := postgres.ParseLSN(fmt.Sprint(l["end_lsn"]))
		if err1 != nil || err2 != nil {
			t.Fatalf("flush line without LSNs: %v", l)
		}
		if s >= afterThree {
			gapPoint, from, to = fmt.Sprint(l["point"]), s, en
			break
		}
	}
	if gapPoint == "" {
		t.Fatalf("no WAL point after %s in %v", afterThree, pg.p.all())
	}
	e.mustDB("forget", gapPoint)

	r := e.wantExit(exitCorrupt, "check")
	segment := postgres.SegmentName(1, from, 16<<20)
	wantGap := fmt.Sprintf("WAL %s to %s missing", from, to)
	if !strings.Contains(r.stdout, "WAL gap") || !strings.Contains(r.stdout, resource) ||
		!strings.Contains(r.stdout, wantGap) || !strings.Contains(r.stdout, segment) {
		t.Errorf("check does not report the gap %q in segment %s:\n%s", wantGap, segment, r.stdout)
	}
	t.Logf("rewind check (exit %d):\n%s", r.code, r.stdout)
	rng := e.restorable(resource)
	gaps, _ := rng["gaps"].([]any)
	if len(gaps) != 1 || gaps[0].(map[string]any)["from_lsn"] != from.String() || gaps[0].(map[string]any)["to_lsn"] != to.String() {
		t.Errorf("points --json gaps %v, want one from %s to %s", rng["gaps"], from, to)
	}

	// A time past the gap is refused loudly, naming the gap; nothing is written.
	past := filepath.Join(pg.dir, "pgdata-past")
	r = e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--at", pg.between(7), "--target", past)
	if !strings.Contains(r.stderr, "outside what resource") || !strings.Contains(r.stderr, wantGap) {
		t.Errorf("restore past the gap: the message does not name the gap %q:\n%s", wantGap, r.stderr)
	}
	t.Logf("restore past the gap (exit %d):\n%s", r.code, r.stderr)
	if entries, _ := os.ReadDir(past); len(entries) > 0 {
		t.Errorf("a refused restore wrote %d entries into %s", len(entries), past)
	}

	// A time before the gap still restores.
	before := filepath.Join(pg.dir, "pgdata-before")
	e.mustDB("restore", "latest", "--resource", resource, "--at", pg.between(2), "--target", before)
	if got := restoredRows(t, pg.srv, before); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("restore --at between rows 2 and 3: rows %v, want [1 2]", got)
	}
}

// TestE2EPostgresOffsiteCopy copies a protected resource's points (base backup and WAL)
// with 'rewind copy' into a second vault with its own password, deletes the first vault,
// and restores --at a time from the copy alone: the restored cluster starts with exactly
// the rows committed before that time.
func TestE2EPostgresOffsiteCopy(t *testing.T) {
	const resource = "orders-db"
	pg := startProtectedPostgres(t, resource)
	e := pg.e
	pg.insert(1, 8)
	pg.p.stop()

	const offsiteKey = "offsite battery staple"
	off := &dbEnv{env: &env{t: t, vault: filepath.Join(pg.dir, "offsite"), extra: []string{"REWIND_PASSWORD=" + offsiteKey}}, cred: e.cred}
	off.mustDB("init")
	e.extra = append(e.extra, "REWIND_TO_PASSWORD="+offsiteKey)
	out := e.mustDB("copy", "--to", off.vault, "--resource", resource)
	t.Logf("rewind copy:\n%s", out)
	if err := os.RemoveAll(e.vault); err != nil {
		t.Fatal(err)
	}
	e.wantExit(exitNotFound, "points")

	// The copy opens only with its own key, is complete, and restores.
	wrongKey := &dbEnv{env: &env{t: t, vault: off.vault}, cred: e.cred}
	wrongKey.wantExit(exitWrongKey, "points")
	off.mustDB("check")
	rng := off.restorable(resource)
	if spans, _ := rng["spans"].([]any); len(spans) != 1 || rng["gaps"] != nil {
		t.Fatalf("the copy's restorable range %v: want one span and no gap", rng)
	}
	pgdata := filepath.Join(pg.dir, "pgdata-offsite")
	off.mustDB("restore", "latest", "--resource", resource, "--at", pg.between(5), "--target", pgdata)
	if got := restoredRows(t, pg.srv, pgdata); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("restore from the copy --at between rows 5 and 6: rows %v, want [1 2 3 4 5]", got)
	}
}
