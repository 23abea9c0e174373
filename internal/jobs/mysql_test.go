package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/jobs"
	"github.com/rewind-dr/rewind/internal/testenv"
	"github.com/rewind-dr/rewind/internal/testenv/mariadb"
)

// mysqlAccount creates user@127.0.0.1 on srv with privileges and returns its URL.
func mysqlAccount(t *testing.T, srv *mariadb.Server, user, password, privileges string) string {
	t.Helper()
	if err := srv.Exec(context.Background(),
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", user, password),
		fmt.Sprintf("GRANT %s ON *.* TO '%s'@'127.0.0.1'", privileges, user)); err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, password), Host: srv.Addr, Path: "/"}
	return u.String()
}

// mysqlRoot connects to srv as root over its socket.
func mysqlRoot(t *testing.T, srv *mariadb.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mysqlNow is the server's clock, which dates its binlog events.
func mysqlNow(t *testing.T, db *sql.DB) time.Time {
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

// mysqlIDs returns the ids of shop.items on the server behind db (nil when the table is
// missing).
func mysqlIDs(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query("SELECT id FROM shop.items ORDER BY id")
	if err != nil {
		t.Fatalf("reading the restored rows: %v", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// TestMySQLJobs: a backup job of a MySQL resource takes a dump; the server's continuous
// protection ships the binlog after it (recording every piece in the catalog); restore
// jobs into a live empty server bring back exactly the rows of a time between two inserts,
// the dump's own state for its point ID, and refuse a server that is not empty, a
// directory without a physical backup and a server URL for a files point. No password
// reaches the catalog.
func TestMySQLJobs(t *testing.T) {
	ctx := context.Background()
	src := mariadb.StartWith(t, mariadb.Options{LogBin: true, ServerID: 1})
	dst := mariadb.StartWith(t, mariadb.Options{ServerID: 2})
	srcPW, dstPW := "src-"+testenv.RandomHex(8), "dst-"+testenv.RandomHex(8)
	srcURL := mysqlAccount(t, src, "backup", srcPW,
		"SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, PROCESS, BINLOG MONITOR, REPLICATION SLAVE")
	dstURL := mysqlAccount(t, dst, "restore", dstPW, "ALL PRIVILEGES")
	sdb, ddb := mysqlRoot(t, src), mysqlRoot(t, dst)
	exec := func(db *sql.DB, q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(sdb, "CREATE DATABASE shop")
	exec(sdb, "CREATE TABLE shop.items (id INT PRIMARY KEY)")
	exec(sdb, "INSERT INTO shop.items VALUES (1)")

	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	f.cfg.Resources["shop-mysql"] = config.Resource{Name: "shop-mysql", Kind: config.KindMySQL, URL: srcURL, Continuous: true,
		Tags: map[string]string{"app": "shop"}}
	downPW := "down-" + testenv.RandomHex(8)
	f.cfg.Resources["down"] = config.Resource{Name: "down", Kind: config.KindMySQL, URL: "mysql://backup:" + downPW + "@127.0.0.1:1/",
		Tags: map[string]string{}}
	p := f.cfg.Plans["gold"]
	p.Resources = append(p.Resources, "shop-mysql")
	f.cfg.Plans["gold"] = p
	s := f.newServer(t, "srv", jobs.QueueOptions{})
	run := func(j *catalog.Job) *catalog.Job {
		t.Helper()
		id := createJob(t, s.store, j)
		if err := s.runner.Run(ctx, id); err != nil {
			t.Fatalf("Run %s %s: %v", j.Kind, j.Resource, err)
		}
		j = getJob(t, s.store, id)
		b, _ := json.Marshal(j)
		for _, pw := range []string{srcPW, dstPW, downPW} {
			// No job shows a password: restore targets name a password file.
			if strings.Contains(string(b), pw) && !strings.Contains(j.Error, "carries a password") {
				t.Errorf("job %s shows a password: %s", j.ID, b)
			}
			if strings.Contains(j.Error, pw) || strings.Contains(j.CreatedResource, pw) {
				t.Errorf("job %s's error or created resource shows a password: %q %q", j.ID, j.Error, j.CreatedResource)
			}
		}
		return j
	}
	restore := func(params map[string]any) *catalog.Job {
		t.Helper()
		raw, _ := json.Marshal(params)
		return run(&catalog.Job{Kind: catalog.JobRestore, State: catalog.StatePending, Resource: "shop-mysql", Vault: "main", Params: raw})
	}

	b := run(&catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "shop-mysql", Vault: "main"})
	if b.State != catalog.StateCompleted || b.PointID == "" {
		t.Fatalf("mysql backup job: %+v", b)
	}
	if ps := listPoints(t, s.store, catalog.PointFilter{Resource: catalog.Ptr("shop-mysql")}); len(ps) != 1 || ps[0].Kind != "mysql-dump" {
		t.Fatalf("catalog points after the backup: %+v", ps)
	}
	// An unreachable server is an error worth retrying, named without its password.
	id := createJob(t, s.store, &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "down", Vault: "main"})
	err := s.runner.Run(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), downPW) {
		t.Errorf("backup of an unreachable server: %v, want an error naming the server without its password", err)
	}
	if d := getJob(t, s.store, id); strings.Contains(d.Error, downPW) {
		t.Errorf("the job's error shows the password: %q", d.Error)
	}

	// The server streams the binlog after the dump while rows are inserted.
	if got := s.runner.ContinuousTargets(); !slices.Contains(got, jobs.ContinuousTarget{Resource: "shop-mysql", Vault: "main"}) {
		t.Fatalf("continuous targets %+v", got)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.queue.Protect(pctx) }()
	exec(sdb, "INSERT INTO shop.items VALUES (2)")
	time.Sleep(1100 * time.Millisecond) // binlog times have one-second resolution
	between := mysqlNow(t, sdb)
	time.Sleep(1100 * time.Millisecond)
	exec(sdb, "INSERT INTO shop.items VALUES (3)")
	last := mysqlNow(t, sdb)
	waitFor(t, "the binlog of row 3 in the catalog", func() bool {
		ps := listPoints(t, s.store, catalog.PointFilter{Resource: catalog.Ptr("shop-mysql"), Kind: catalog.Ptr("mysql-binlog")})
		return len(ps) > 0 && ps[len(ps)-1].RangeTo != nil && !ps[len(ps)-1].RangeTo.Before(last.Truncate(time.Second))
	})
	stop()
	<-done
	var states []string
	for _, e := range events(t, s.store) {
		if e.DetailType == jobs.ContinuityDetailType && e.d["resource"] == "shop-mysql" {
			states = append(states, fmt.Sprint(e.d["state"]))
		}
	}
	if strings.Join(states, " ") != "ACTIVE STOPPED" {
		t.Errorf("continuity events: %v", states)
	}

	// A target URL with its password would keep the password in the catalog: refused.
	// The password goes in a file the URL names.
	if j := restore(map[string]any{"point": "latest", "target": dstURL}); j.State != catalog.StateFailed ||
		!strings.Contains(j.Error, "carries a password") || strings.Contains(j.Error, dstPW) {
		t.Errorf("restore to a URL with a password: %s %q", j.State, j.Error)
	}
	pwFile := filepath.Join(t.TempDir(), "target.pw")
	if err := os.WriteFile(pwFile, []byte(dstPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plainURL := strings.Replace(dstURL, ":"+dstPW, "", 1)
	dstURL = plainURL + "?password_file=" + url.QueryEscape(pwFile)

	// The target server has a database of its own: refused, naming it.
	j := restore(map[string]any{"point": "latest", "target": dstURL})
	if j.State != catalog.StateFailed || !strings.Contains(j.Error, "not empty") || !strings.Contains(j.Error, mariadb.DefaultDatabase) {
		t.Errorf("restore into a non-empty server: %s %q", j.State, j.Error)
	}
	exec(ddb, "DROP DATABASE "+mariadb.DefaultDatabase)
	j = restore(map[string]any{"point": "latest", "target": dstURL, "at": between.Format(time.RFC3339Nano)})
	if j.State != catalog.StateCompleted {
		t.Fatalf("restore at %v: %+v", between, j)
	}
	if got := mysqlIDs(t, ddb); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("restore at %v (between rows 2 and 3): rows %v, want [1 2]", between, got)
	}
	if want := plainURL; j.CreatedResource != want || j.PointID != b.PointID {
		t.Errorf("restore job: created %q point %s, want %q from the dump %s", j.CreatedResource, j.PointID, want, b.PointID)
	}

	// A point ID stands for that point's state: the dump's, without the binlog after it.
	exec(ddb, "DROP DATABASE shop")
	exec(ddb, "DROP DATABASE "+mariadb.DefaultDatabase)
	if j = restore(map[string]any{"point": b.PointID, "target": dstURL}); j.State != catalog.StateCompleted {
		t.Fatalf("restore of the dump's point: %+v", j)
	}
	if got := mysqlIDs(t, ddb); !slices.Equal(got, []int{1}) {
		t.Errorf("restore of the dump's point: rows %v, want [1]", got)
	}

	// A directory target needs a physical backup.
	j = restore(map[string]any{"point": "latest", "target": filepath.Join(t.TempDir(), "datadir")})
	if j.State != catalog.StateFailed || !strings.Contains(j.Error, "no mysql-physical point") {
		t.Errorf("restore into a directory without a physical backup: %s %q", j.State, j.Error)
	}
	// A files point does not restore into a server.
	if d := run(backupJob()); d.State != catalog.StateCompleted {
		t.Fatalf("files backup: %+v", d)
	}
	raw, _ := json.Marshal(map[string]any{"point": "latest", "target": dstURL})
	j = run(&catalog.Job{Kind: catalog.JobRestore, State: catalog.StatePending, Resource: "docs", Vault: "main", Params: raw})
	if j.State != catalog.StateFailed || !strings.Contains(j.Error, "only MySQL/MariaDB points restore into a server URL") {
		t.Errorf("files restore into a server URL: %s %q", j.State, j.Error)
	}
}
