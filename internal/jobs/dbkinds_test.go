package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/jobs"
	redistest "github.com/rewind-dr/rewind/internal/testenv/redis"
)

// TestDatabaseJobs: backup and restore jobs of SQLite and Redis resources run the
// database plugins: a live WAL database gets a consistent snapshot and restores into a
// file that holds the rows; a Redis server's RDB restores into a file. (MySQL jobs are
// tested in mysql_test.go.)
func TestDatabaseJobs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	dbPath := filepath.Join(f.dir, "app.db")
	u := url.URL{Scheme: "file", Path: dbPath, RawQuery: "_pragma=journal_mode(WAL)&_pragma=busy_timeout(1000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := db.Exec(`INSERT INTO orders (item) VALUES (?)`, fmt.Sprintf("item %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	rs := redistest.Start(t)
	f.cfg.Resources["app-db"] = config.Resource{Name: "app-db", Kind: config.KindSQLite, Path: dbPath, Tags: map[string]string{"app": "shop"}}
	f.cfg.Resources["cache"] = config.Resource{Name: "cache", Kind: config.KindRedis, URL: rs.URL, Tags: map[string]string{}}
	st := f.openStore(t)
	r, _ := f.newRunner(t, st)
	run := func(j *catalog.Job) *catalog.Job {
		t.Helper()
		id := createJob(t, st, j)
		if err := r.Run(ctx, id); err != nil {
			t.Fatalf("Run %s %s: %v", j.Kind, j.Resource, err)
		}
		return getJob(t, st, id)
	}

	b := run(&catalog.Job{Kind: catalog.JobBackup, Resource: "app-db", Vault: "main"})
	if b.State != catalog.StateCompleted || b.PointID == "" {
		t.Fatalf("sqlite backup: %+v", b)
	}
	if ps := listPoints(t, st, catalog.PointFilter{Resource: catalog.Ptr("app-db")}); len(ps) != 1 || ps[0].Kind != "sqlite-snapshot" {
		t.Fatalf("sqlite points: %+v", ps)
	}
	if _, err := db.Exec(`INSERT INTO orders (item) VALUES ('after the backup')`); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(f.dir, "restored.db")
	rj := run(&catalog.Job{Kind: catalog.JobRestore, Resource: "app-db", Vault: "main",
		Params: []byte(`{"point":"latest","target":"` + target + `"}`)})
	if rj.State != catalog.StateCompleted || rj.CreatedResource != target {
		t.Fatalf("sqlite restore: %+v", rj)
	}
	rdb, err := sql.Open("sqlite", "file:"+target+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var n int
	var check string
	if err := rdb.QueryRow(`SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("restored rows: %d %v", n, err)
	}
	if err := rdb.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}

	b = run(&catalog.Job{Kind: catalog.JobBackup, Resource: "cache", Vault: "main"})
	if b.State != catalog.StateCompleted {
		t.Fatalf("redis backup: %+v", b)
	}
	rdbFile := filepath.Join(f.dir, "dump.rdb")
	rj = run(&catalog.Job{Kind: catalog.JobRestore, Resource: "cache", Vault: "main",
		Params: []byte(`{"point":"latest","target":"` + rdbFile + `"}`)})
	if rj.State != catalog.StateCompleted {
		t.Fatalf("redis restore: %+v", rj)
	}
	if data, err := os.ReadFile(rdbFile); err != nil || len(data) < 9 || string(data[:5]) != "REDIS" {
		t.Fatalf("restored RDB: %d bytes, %v", len(data), err)
	}
}

// TestContinuousProtection: a continuous SQLite resource is protected by the server
// itself: its commits reach the vault within seconds, and a restore job to a time between
// two commits gives exactly the rows committed by then.
func TestContinuousProtection(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	dbPath := filepath.Join(f.dir, "live.db")
	u := url.URL{Scheme: "file", Path: dbPath, RawQuery: "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT)`); err != nil {
		t.Fatal(err)
	}
	f.cfg.Resources["live"] = config.Resource{Name: "live", Kind: config.KindSQLite, Path: dbPath, Continuous: true, Tags: map[string]string{}}
	p := f.cfg.Plans["gold"]
	p.Resources = append(p.Resources, "live")
	f.cfg.Plans["gold"] = p
	s := f.newServer(t, "srv", jobs.QueueOptions{})
	if got := s.runner.ContinuousTargets(); len(got) != 1 || got[0] != (jobs.ContinuousTarget{Resource: "live", Vault: "main"}) {
		t.Fatalf("continuous targets %+v", got)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.queue.Protect(pctx) }()
	insert := func(n int) {
		for range n {
			if _, err := db.Exec(`INSERT INTO events (at) VALUES (datetime('now'))`); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	insert(10)
	time.Sleep(1500 * time.Millisecond)
	between := time.Now().UTC()
	time.Sleep(1500 * time.Millisecond)
	insert(5)
	time.Sleep(2500 * time.Millisecond)
	stop()
	<-done
	// The log batches are in the catalog, so it knows the restorable range; the stream's
	// start and stop were announced.
	wal := listPoints(t, s.store, catalog.PointFilter{Resource: catalog.Ptr("live"), Kind: catalog.Ptr("sqlite-wal")})
	if len(wal) == 0 || wal[len(wal)-1].RangeTo == nil || wal[len(wal)-1].RangeTo.Before(between) {
		t.Fatalf("catalog log points of live: %+v", wal)
	}
	var states []string
	for _, e := range events(t, s.store) {
		if e.DetailType == jobs.ContinuityDetailType {
			states = append(states, fmt.Sprint(e.d["state"]))
		}
	}
	if strings.Join(states, " ") != "ACTIVE STOPPED" {
		t.Errorf("continuity events: %v", states)
	}

	// A scheduled backup of a continuous resource copies its log to the other site too.
	bid := createJob(t, s.store, &catalog.Job{Kind: catalog.JobBackup, State: catalog.StatePending, Resource: "live", Vault: "main", Plan: "gold", Rule: "daily"})
	if err := s.runner.Run(ctx, bid); err != nil {
		t.Fatal(err)
	}
	for _, j := range listJobs(t, s.store, catalog.JobFilter{Kind: catalog.Ptr(catalog.JobCopy), Resource: catalog.Ptr("live")}) {
		if err := s.runner.Run(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if j := getJob(t, s.store, j.ID); j.State != catalog.StateCompleted {
			t.Fatalf("copy %+v", j)
		}
	}
	if n := len(listPoints(t, s.store, catalog.PointFilter{Vault: catalog.Ptr("offsite"), Kind: catalog.Ptr("sqlite-wal")})); n != len(wal) {
		t.Errorf("offsite holds %d log points of live, want %d", n, len(wal))
	}

	for _, c := range []struct {
		at   *time.Time
		want int
	}{{&between, 10}, {nil, 15}} {
		target := filepath.Join(t.TempDir(), "restored.db")
		params := map[string]any{"point": "latest", "target": target}
		if c.at != nil {
			params["at"] = c.at.Format(time.RFC3339Nano)
		}
		raw, _ := json.Marshal(params)
		id := createJob(t, s.store, &catalog.Job{Kind: catalog.JobRestore, State: catalog.StatePending, Resource: "live", Vault: "main", Params: raw})
		if err := s.runner.Run(ctx, id); err != nil {
			t.Fatal(err)
		}
		if j := getJob(t, s.store, id); j.State != catalog.StateCompleted {
			t.Fatalf("restore at %v: %+v", c.at, j)
		}
		rdb, err := sql.Open("sqlite", "file:"+target+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := rdb.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != c.want {
			t.Errorf("restore at %v: %d rows (%v), want %d", c.at, n, err, c.want)
		}
		rdb.Close()
	}
}

// TestRestoreTargetPasswordFile: a restore job may not make the server read one of its own
// secrets, or a password file others can read, as a target server's password.
func TestRestoreTargetPasswordFile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, filepath.Join(t.TempDir(), "catalog.db"))
	st := f.openStore(t)
	r, _ := f.newRunner(t, st)
	loose := filepath.Join(t.TempDir(), "loose.pw")
	if err := os.WriteFile(loose, []byte("pw"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.cfg.Vaults["main"].PasswordFile, 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		f.cfg.Vaults["main"].PasswordFile: "one of this server's own secrets",
		loose:                             "readable by others",
		"relative.pw":                     "not an absolute path",
	} {
		raw, _ := json.Marshal(map[string]any{"point": "latest", "target": "mysql://root@127.0.0.1:1/?password_file=" + url.QueryEscape(file)})
		id := createJob(t, st, &catalog.Job{Kind: catalog.JobRestore, Resource: "docs", Vault: "main", Params: raw})
		if err := r.Run(ctx, id); err != nil {
			t.Fatal(err)
		}
		if j := getJob(t, st, id); j.State != catalog.StateFailed || !strings.Contains(j.Error, want) {
			t.Errorf("password_file %s: %s %q, want %q", file, j.State, j.Error, want)
		}
	}
}
