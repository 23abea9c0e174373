package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the "mysql" database/sql driver, for the application side

	"github.com/rewind-dr/rewind/internal/testenv"
	"github.com/rewind-dr/rewind/internal/testenv/mariadb"
)

// TestE2EMySQL drives MariaDB protection through the binary with two real servers, a
// source with its binary log on and an empty target: 'rewind protect' takes a dump and
// ships the binlog while rows are inserted with pauses; 'rewind points' shows the span;
// 'rewind restore --at' a time between two inserts into the target server shows exactly
// the earlier rows; a binlog position and the latest state restore too; a non-empty
// target without --force, a time outside the range, bad option combinations and wrong
// passwords are refused with precise messages and exit codes; a physical backup restores
// into a directory. No password is ever printed.
func TestE2EMySQL(t *testing.T) {
	e := &dbEnv{env: newEnv(t)}
	e.must("init")
	const resource = "shop-mysql"
	src := mariadb.StartWith(t, mariadb.Options{LogBin: true, ServerID: 1})
	dst := mariadb.StartWith(t, mariadb.Options{ServerID: 2})
	srcPW, dstPW := "src-"+testenv.RandomHex(8), "dst-"+testenv.RandomHex(8)
	srcURL := mysqlAccount(t, src, "backup", srcPW,
		"SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, PROCESS, BINLOG MONITOR, REPLICATION SLAVE")
	dstURL := mysqlAccount(t, dst, "restore", dstPW, "ALL PRIVILEGES")
	sdb, ddb := mysqlRootDB(t, src), mysqlRootDB(t, dst)
	exec := func(db *sql.DB, q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(sdb, "CREATE DATABASE shop")
	exec(sdb, "CREATE TABLE shop.items (id INT PRIMARY KEY)")
	exec(sdb, "INSERT INTO shop.items VALUES (1)")
	var outputs []string // everything printed, checked for passwords at the end
	refuse := func(code int, want string, args ...string) {
		t.Helper()
		r := e.wantExit(code, args...)
		if !strings.Contains(r.stderr, want) {
			t.Errorf("rewind %s: stderr %q, want it to say %q", strings.Join(args, " "), r.stderr, want)
		}
		outputs = append(outputs, r.stdout, r.stderr)
	}

	// Bad combinations and a wrong password are refused before anything is written.
	refuse(exitUsage, "--exclude does not apply", "backup", "--resource", resource, "--exclude", "*.tmp", srcURL)
	refuse(exitUsage, "--slot does not apply", "protect", "--resource", resource, "--slot", "x", srcURL)
	refuse(exitUsage, "--physical does not apply", "backup", "--physical", "/etc")
	refuse(exitUsage, "names no user", "backup", "mysql://:"+srcPW+"@"+src.Addr+"/")
	wrong := strings.Replace(srcURL, srcPW, "wrong-"+testenv.RandomHex(4), 1)
	refuse(exitWrongKey, "Access denied", "backup", "--resource", resource, wrong)

	p := e.startProtect("--resource", resource, "--flush-every", "200ms", srcURL)
	p.waitFor("the dump", func(l map[string]any) bool { return l["message_type"] == "base" && l["point"] != nil })
	p.waitFor("the first flush", func(l map[string]any) bool { return l["message_type"] == "flush" })
	exec(sdb, "INSERT INTO shop.items VALUES (2)")
	time.Sleep(300 * time.Millisecond)
	exec(sdb, "INSERT INTO shop.items VALUES (3)")
	time.Sleep(1100 * time.Millisecond) // binlog times have one-second resolution
	between := mysqlServerNow(t, sdb)
	time.Sleep(1100 * time.Millisecond)
	exec(sdb, "INSERT INTO shop.items VALUES (4)")
	f4, p4 := mysqlMasterStatus(t, sdb)
	time.Sleep(300 * time.Millisecond)
	exec(sdb, "INSERT INTO shop.items VALUES (5)")
	f5, p5 := mysqlMasterStatus(t, sdb)
	p.waitFor(fmt.Sprintf("binlog up to %s:%d", f5, p5), func(l map[string]any) bool {
		end, _ := strconv.ParseUint(fmt.Sprint(l["end_pos"]), 10, 64)
		return l["message_type"] == "flush" && l["binlog_file"] == f5 && end >= p5
	})
	p.stop()
	for _, l := range p.all() {
		outputs = append(outputs, fmt.Sprint(l))
	}

	rng := e.restorable(resource)
	spans, _ := rng["spans"].([]any)
	if rng["kind"] != "mysql" || len(spans) != 1 || rng["gaps"] != nil {
		t.Fatalf("restorable %v, want one mysql span without gaps", rng)
	}
	span := spans[0].(map[string]any)
	if span["base_kind"] != "mysql-dump" || !strings.HasPrefix(fmt.Sprint(span["to_binlog"]), f5+":") {
		t.Errorf("span %v, want from a mysql-dump to %s", span, f5)
	}
	from, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(span["from"]))
	to, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(span["to"]))
	if !from.Before(between) || to.Before(between) {
		t.Errorf("span %v .. %v does not hold %v", from, to, between)
	}
	listing := e.mustDB("points", "--resource", resource)
	if !strings.Contains(listing, "restorable:") || !strings.Contains(listing, "binlog ") || !strings.Contains(listing, "from mysql-dump") {
		t.Errorf("points listing:\n%s", listing)
	}
	outputs = append(outputs, listing)

	// Refusals of restore: the target server holds a database of its own; a time before
	// the dump; options of other kinds or that contradict each other; a wrong password.
	at := between.Format(time.RFC3339Nano)
	restore := []string{"restore", "latest", "--resource", resource}
	refuse(exitFailure, "is not empty: it has the databases "+mariadb.DefaultDatabase, append(restore, "--at", at, "--target", dstURL)...)
	early := from.Add(-time.Hour).Format(time.RFC3339)
	refuse(exitUsage, "is outside the restorable range", append(restore, "--at", early, "--target", dstURL)...)
	refuse(exitUsage, "two restore targets", append(restore, "--at", at, "--binlog-file", f4, "--binlog-pos", "4", "--target", dstURL)...)
	refuse(exitUsage, "needs both --binlog-file and --binlog-pos", append(restore, "--binlog-pos", "4", "--target", dstURL)...)
	refuse(exitUsage, "--lsn does not apply", append(restore, "--lsn", "0/1", "--target", dstURL)...)
	refuse(exitUsage, "--overwrite does not apply", append(restore, "--overwrite", "--target", dstURL)...)
	refuse(exitUsage, "only MySQL/MariaDB points restore into a server", append(restore, "--target", "postgres://u:"+dstPW+"@h/")...)
	refuse(exitUsage, "--force applies to a server target", append(restore, "--force", "--target", t.TempDir())...)
	refuse(exitWrongKey, "Access denied", append(restore, "--target", strings.Replace(dstURL, dstPW, "wrong", 1))...)
	refuse(exitNotFound, "no mysql-physical point", append(restore, "--target", filepath.Join(t.TempDir(), "datadir"))...)

	// Between rows 3 and 4: exactly rows 1 to 3.
	exec(ddb, "DROP DATABASE "+mariadb.DefaultDatabase)
	out := e.mustDB(append(restore, "--at", at, "--target", dstURL)...)
	if !strings.Contains(out, "restored MySQL/MariaDB resource "+resource) || !strings.Contains(out, "restore:xxxxx@") {
		t.Errorf("restore output:\n%s", out)
	}
	outputs = append(outputs, out)
	if got := mysqlItems(t, ddb); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("restore --at %s (between rows 3 and 4): rows %v, want [1 2 3]", at, got)
	}
	// To the binlog position after row 4, over the restored data (--force).
	outputs = append(outputs, e.mustDB(append(restore, "--binlog-file", f4, "--binlog-pos", fmt.Sprint(p4), "--force", "--target", dstURL)...))
	if got := mysqlItems(t, ddb); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("restore to %s:%d (after row 4): rows %v, want [1 2 3 4]", f4, p4, got)
	}
	// The latest state, with a JSON summary.
	out = e.mustDB(append(restore, "--json", "--force", "--target", dstURL)...)
	outputs = append(outputs, out)
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum["kind"] != "mysql" || sum["base_kind"] != "mysql-dump" ||
		sum["recovery_target"] != "the end of the stored binlog" {
		t.Errorf("restore --json: %v (%s)", err, out)
	}
	if got := mysqlItems(t, ddb); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("restore of the latest state: rows %v, want [1 … 5]", got)
	}

	// A physical backup on the database host (this machine, over the socket as root)
	// restores into a directory, prepared.
	sock := url.URL{Scheme: "mysql", User: url.User("root"), Path: "/", RawQuery: url.Values{"socket": {src.Socket}}.Encode()}
	out = e.mustDB("backup", "--resource", resource+"-physical", "--physical", sock.String())
	if !strings.Contains(out, "mysql-physical") || !strings.Contains(out, "physical backup: consistent at binlog "+f5) {
		t.Errorf("physical backup output:\n%s", out)
	}
	dir := filepath.Join(t.TempDir(), "datadir")
	out = e.mustDB("restore", "latest", "--resource", resource+"-physical", "--target", dir)
	if !strings.Contains(out, "extracted and prepared") {
		t.Errorf("physical restore output:\n%s", out)
	}
	for _, f := range []string{"shop/items.ibd", "ibdata1"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the restored data directory lacks %s: %v", f, err)
		}
	}
	noSecret(t, srcPW, outputs...)
	noSecret(t, dstPW, outputs...)
}

// mysqlAccount creates user@127.0.0.1 on srv with privileges and returns its URL.
func mysqlAccount(t *testing.T, srv *mariadb.Server, user, password, privileges string) string {
	t.Helper()
	if err := srv.Exec(t.Context(),
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", user, password),
		fmt.Sprintf("GRANT %s ON *.* TO '%s'@'127.0.0.1'", privileges, user)); err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, password), Host: srv.Addr, Path: "/"}
	return u.String()
}

// mysqlRootDB connects to srv as root over its socket.
func mysqlRootDB(t *testing.T, srv *mariadb.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mysqlServerNow is the server's clock, which dates its binlog events.
func mysqlServerNow(t *testing.T, db *sql.DB) time.Time {
	t.Helper()
	var s string
	if err := db.QueryRow("SELECT UTC_TIMESTAMP(6)").Scan(&s); err != nil {
		t.Fatal(err)
	}
	tm, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

// mysqlMasterStatus returns the server's current binlog file and position.
func mysqlMasterStatus(t *testing.T, db *sql.DB) (string, uint64) {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no row (binary log off?)")
	}
	var file string
	var pos uint64
	vals := []any{&file, &pos}
	for len(vals) < len(cols) {
		vals = append(vals, new(sql.RawBytes))
	}
	if err := rows.Scan(vals...); err != nil {
		t.Fatal(err)
	}
	return file, pos
}

// mysqlItems returns the ids in shop.items on the server behind db.
func mysqlItems(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query("SELECT id FROM shop.items ORDER BY id")
	if err != nil {
		t.Fatalf("reading the restored rows: %v", err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}
