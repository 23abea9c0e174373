package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/testenv"
	"github.com/rewind-dr/rewind/internal/testenv/mariadb"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newVault opens a real vault on an in-memory backend with a shared lock held.
func newVault(t testing.TB) mysql.Vault {
	t.Helper()
	ctx := context.Background()
	r, err := vault.Init(ctx, mem.New(), "pw", vault.InitOptions{
		KDF: vault.KDFParams{Time: 1, Memory: 64, Threads: 1}, PackSize: 256 << 10,
		ChunkerParams: chunker.Params{Min: 16 << 10, Avg: 32 << 10, Max: 128 << 10},
		Runtime:       vault.OpenOptions{Host: "test-host"},
	})
	must(t, err)
	l, err := r.Lock(ctx, false)
	must(t, err)
	t.Cleanup(func() { l.Unlock(context.Background()); r.Close() })
	return mysql.FromVault(r)
}

// account creates user@127.0.0.1 with password and the privileges on srv and returns the
// server's URL for it.
func account(t testing.TB, srv *mariadb.Server, user, password, privileges string) string {
	t.Helper()
	must(t, srv.Exec(context.Background(),
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", user, strings.ReplaceAll(password, `\`, `\\`)),
		fmt.Sprintf("GRANT %s ON *.* TO '%s'@'127.0.0.1'", privileges, user)))
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, password), Host: srv.Addr, Path: "/"}
	return u.String()
}

// rootDB connects as root over the server's socket.
func rootDB(t testing.TB, srv *mariadb.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", srv.RootDSN())
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// insert adds row id to shop.items and returns the server's time just after the commit.
func insert(t testing.TB, db *sql.DB, id int) time.Time {
	t.Helper()
	_, err := db.Exec("INSERT INTO shop.items (id, name) VALUES (?, ?)", id, fmt.Sprintf("item %d", id))
	must(t, err)
	return serverNow(t, db)
}

func serverNow(t testing.TB, db *sql.DB) time.Time {
	t.Helper()
	var s string
	must(t, db.QueryRow("SELECT UTC_TIMESTAMP(6)").Scan(&s))
	tm, err := time.Parse("2006-01-02 15:04:05.999999", s)
	must(t, err)
	return tm.UTC()
}

func masterStatus(t testing.TB, db *sql.DB) (string, uint64) {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	must(t, err)
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no row")
	}
	var file string
	var pos uint64
	vals := []any{&file, &pos}
	for len(vals) < len(cols) {
		vals = append(vals, new(sql.RawBytes))
	}
	must(t, rows.Scan(vals...))
	return file, pos
}

// ids returns the ids in shop.items on the server behind db.
func ids(t testing.TB, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query("SELECT id FROM shop.items ORDER BY id")
	must(t, err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		must(t, rows.Scan(&id))
		out = append(out, id)
	}
	must(t, rows.Err())
	return out
}

// tick ships until the binlog reached the server's position.
func tick(t testing.TB, st *mysql.Streamer) []*vault.Point {
	t.Helper()
	ps, err := st.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return ps
}

// checkNoPasswordInProcesses fails if any process's command line holds a password.
func checkNoPasswordInProcesses(t testing.TB, passwords ...string) {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	must(t, err)
	seen := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended
		}
		if strings.Contains(string(b), "mariadb-binlog") {
			seen++
		}
		for _, pw := range passwords {
			if strings.Contains(string(b), pw) {
				t.Errorf("%s holds a password: %q", p, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	if seen == 0 {
		t.Error("no mariadb-binlog process found while streaming")
	}
}

// purge removes the binlog files before cur, waiting for the server's dump thread of a
// stopped streamer to end (a file in use is not purged).
func purge(t testing.TB, db *sql.DB, cur string) {
	t.Helper()
	for i := 0; ; i++ {
		_, err := db.Exec("PURGE BINARY LOGS TO '" + cur + "'")
		must(t, err)
		var first string
		rows, err := db.Query("SHOW BINARY LOGS")
		must(t, err)
		cols, _ := rows.Columns()
		if rows.Next() {
			vals := []any{&first}
			for len(vals) < len(cols) {
				vals = append(vals, new(sql.RawBytes))
			}
			must(t, rows.Scan(vals...))
		}
		rows.Close()
		if first == cur {
			return
		}
		if i == 100 {
			t.Fatalf("PURGE BINARY LOGS TO %s left %s", cur, first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPointInTimeRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := mariadb.StartWith(t, mariadb.Options{LogBin: true, ServerID: 1})
	dst := mariadb.StartWith(t, mariadb.Options{ServerID: 2})
	srcPW := `s3cr"et\` + testenv.RandomHex(8)
	dstPW := `t4rg#et; ` + testenv.RandomHex(8)
	srcURL := account(t, src, "backup", srcPW,
		"SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, PROCESS, BINLOG MONITOR, REPLICATION SLAVE")
	dstURL := account(t, dst, "restore", dstPW, "ALL PRIVILEGES")
	sdb, ddb := rootDB(t, src), rootDB(t, dst)
	_, err := sdb.Exec("CREATE DATABASE shop")
	must(t, err)
	_, err = sdb.Exec("CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64))")
	must(t, err)
	insert(t, sdb, 1)

	v := newVault(t)
	const resource = "shop-mysql"
	b, err := mysql.Backup(ctx, v, srcURL, mysql.BackupOptions{Resource: resource})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	file, _ := masterStatus(t, sdb)
	if b.Point.Kind != mysql.KindDump || b.BinlogFile != file || b.BinlogPos < 4 || b.GTID == "" {
		t.Fatalf("Backup: kind %s at %s:%d gtid %q; server is in %s", b.Point.Kind, b.BinlogFile, b.BinlogPos, b.GTID, file)
	}

	st, err := mysql.OpenStream(ctx, v, srcURL, mysql.StreamOptions{Resource: resource})
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	t2 := insert(t, sdb, 2)
	tick(t, st)
	checkNoPasswordInProcesses(t, srcPW)
	time.Sleep(2100 * time.Millisecond) // binlog times have one-second resolution
	insert(t, sdb, 3)
	f3, p3 := masterStatus(t, sdb)
	_, err = sdb.Exec("FLUSH BINARY LOGS")
	must(t, err)
	time.Sleep(2100 * time.Millisecond)
	t4 := insert(t, sdb, 4)
	pts := tick(t, st)
	if len(pts) < 2 {
		t.Fatalf("Tick after a rotation saved %d points, want one per file (2)", len(pts))
	}
	if pts[0].Meta[mysql.MetaNextFile] == "" {
		t.Errorf("the piece that ends %s has no %s", pts[0].Meta[mysql.MetaBinlogFile], mysql.MetaNextFile)
	}

	spans, err := mysql.Range(ctx, v, resource)
	must(t, err)
	if len(spans) != 1 || spans[0].Gap != nil || spans[0].To.Before(t4.Truncate(time.Second)) || spans[0].From.After(t2) {
		t.Fatalf("Range = %v, want one span without gap from before %v to after %v", spans, t2, t4)
	}

	restore := func(tg mysql.Target) []int {
		t.Helper()
		for _, d := range []string{"shop", mariadb.DefaultDatabase} {
			_, err := ddb.Exec("DROP DATABASE IF EXISTS " + d)
			must(t, err)
		}
		if _, err := mysql.Restore(ctx, v, resource, dstURL, tg, mysql.RestoreOptions{}); err != nil {
			t.Fatalf("Restore to %+v: %v", tg, err)
		}
		return ids(t, ddb)
	}
	// Between the inserts of rows 2 and 3: exactly rows 1 and 2.
	mid := t2.Add(900 * time.Millisecond)
	if got := restore(mysql.Target{Time: &mid}); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("restore at %v (row 2 at %v): rows %v, want [1 2]", mid, t2, got)
	}
	if got := restore(mysql.Target{File: f3, Pos: p3}); !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Errorf("restore at %s:%d (after row 3): rows %v, want [1 2 3]", f3, p3, got)
	}
	if got := restore(mysql.Target{}); !reflect.DeepEqual(got, []int{1, 2, 3, 4}) {
		t.Errorf("restore to the latest: rows %v, want [1 2 3 4]", got)
	}

	// A non-empty target is refused.
	_, err = mysql.Restore(ctx, v, resource, dstURL, mysql.Target{}, mysql.RestoreOptions{})
	if !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "shop") {
		t.Errorf("restore into a server with database shop: %v, want a Conflict naming it", err)
	}
	// A time outside the range is refused, naming the range.
	early := b.Point.Range.From.Add(-time.Hour)
	for _, d := range []string{"shop", mariadb.DefaultDatabase} {
		_, err := ddb.Exec("DROP DATABASE " + d)
		must(t, err)
	}
	_, err = mysql.Restore(ctx, v, resource, dstURL, mysql.Target{Time: &early}, mysql.RestoreOptions{})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "outside the restorable range") || !strings.Contains(err.Error(), b.Point.ID.Short()) {
		t.Errorf("restore before the backup: %v, want Invalid naming the range", err)
	}

	// A gap: the binlog written while nothing streams is purged before it is shipped.
	end := st.Position()
	must(t, st.Close())
	t5 := insert(t, sdb, 5)
	_, err = sdb.Exec("FLUSH BINARY LOGS")
	must(t, err)
	cur, _ := masterStatus(t, sdb)
	purge(t, sdb, cur)
	_, err = mysql.OpenStream(ctx, v, srcURL, mysql.StreamOptions{Resource: resource})
	if !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), end.String()) {
		t.Fatalf("OpenStream after a purge: %v, want NotFound naming %s", err, end)
	}
	if _, err := mysql.Backup(ctx, v, srcURL, mysql.BackupOptions{Resource: resource}); err != nil {
		t.Fatalf("second Backup: %v", err)
	}
	st2, err := mysql.OpenStream(ctx, v, srcURL, mysql.StreamOptions{Resource: resource})
	if err != nil {
		t.Fatalf("OpenStream after a new backup: %v", err)
	}
	defer st2.Close()
	insert(t, sdb, 6)
	tick(t, st2)
	spans, err = mysql.Range(ctx, v, resource)
	must(t, err)
	if len(spans) != 2 || spans[0].Gap == nil || spans[0].Gap.File != end.File || spans[0].Gap.Pos != end.Pos {
		t.Fatalf("Range after the gap = %v (gap %v), want two spans, the first with a gap at %s", spans, spans[0].Gap, end)
	}
	_, err = mysql.Restore(ctx, v, resource, dstURL, mysql.Target{Time: &t5}, mysql.RestoreOptions{})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "binlog missing from "+end.String()) {
		t.Errorf("restore inside the gap: %v, want Invalid naming the gap", err)
	}
	if got := restore(mysql.Target{}); !reflect.DeepEqual(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("restore to the latest after the new backup: rows %v, want [1 … 6]", got)
	}
}

func TestCredentialsNeverInErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := mariadb.StartWith(t, mariadb.Options{LogBin: true})
	pw := "hunter2-" + testenv.RandomHex(8)
	good := account(t, src, "backup", pw, "SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, PROCESS, BINLOG MONITOR, REPLICATION SLAVE")
	u, _ := url.Parse(good)
	u.User = url.UserPassword("backup", "wrong-"+pw)
	v := newVault(t)
	_, err := mysql.Backup(ctx, v, u.String(), mysql.BackupOptions{})
	if !errs.Is(err, errs.Unauthorized) {
		t.Errorf("Backup with a wrong password: %v, want Unauthorized", err)
	}
	if err != nil && strings.Contains(err.Error(), pw) {
		t.Errorf("error holds the password: %v", err)
	}
	// Without privileges to read the binlog position, the tool fails; its message must
	// not carry the password either.
	weak := account(t, src, "weak", pw, "SELECT")
	_, err = mysql.Backup(ctx, v, weak, mysql.BackupOptions{})
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("Backup by a user without RELOAD: %v, want an error without the password", err)
	}
	_, err = mysql.Backup(ctx, v, "postgres://x@y/", mysql.BackupOptions{})
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("Backup of a postgres:// URL: %v, want Invalid", err)
	}
	// The binary log off is a Conflict with a hint.
	off := mariadb.Start(t)
	offURL := account(t, off, "backup", pw, "ALL PRIVILEGES")
	_, err = mysql.Backup(ctx, v, offURL, mysql.BackupOptions{})
	if !errs.Is(err, errs.Conflict) || errs.HintOf(err) == "" {
		t.Errorf("Backup of a server without binlog: %v, want Conflict with a hint", err)
	}
}
