package main

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for the application side
)

// TestE2ESQLite protects a live SQLite database with 'rewind protect' while this process
// (the application) commits rows on its own connection, then restores --at a time between
// two commits and checks the rows and PRAGMA integrity_check.
func TestE2ESQLite(t *testing.T) {
	e := &dbEnv{env: newEnv(t)}
	e.must("init")
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	app.SetMaxOpenConns(1) // one long-lived application connection
	if _, err := app.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT)"); err != nil {
		t.Fatal(err)
	}
	src := "sqlite://" + path
	resource := "sqlite:" + path // the default resource name

	e.wantExit(exitUsage, "backup", "sqlite://app.db")
	e.wantExit(exitUsage, "protect", "--slot", "x", src)
	e.wantExit(exitUsage, "protect", dir)

	p := e.startProtect("--flush-every", "100ms", src)
	p.waitFor("the first snapshot", func(l map[string]any) bool { return l["message_type"] == "flush" })
	commits := map[int]time.Time{}
	for i := 1; i <= 8; i++ {
		if _, err := app.Exec("INSERT INTO t VALUES (?, ?)", i, strings.Repeat("x", 500)); err != nil {
			t.Fatal(err)
		}
		commits[i] = time.Now()
		time.Sleep(400 * time.Millisecond) // well apart from the 100 ms WAL polling
	}
	p.waitFor("all commits shipped", func(l map[string]any) bool {
		n, _ := l["commits"].(float64)
		return l["message_type"] == "flush" && n >= 8
	})
	p.stop()

	rng := e.restorable(resource)
	if spans, _ := rng["spans"].([]any); rng["kind"] != "sqlite" || len(spans) == 0 {
		t.Fatalf("restorable %v", rng)
	}
	target := filepath.Join(dir, "restored.db")
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--lsn", "0/1", "--target", target)
	e.wantExit(exitUsage, "restore", "latest", "--resource", resource, "--exclusive", "--target", target)

	mid := commits[4].Add(commits[5].Sub(commits[4]) / 2)
	out := e.must("restore", "latest", "--resource", resource, "--at", mid.UTC().Format(time.RFC3339Nano), "--target", target)
	if !strings.Contains(out, "restored SQLite resource") {
		t.Errorf("restore output:\n%s", out)
	}
	// An existing target is kept unless --overwrite.
	if r := e.run("restore", "latest", "--resource", resource, "--target", target); r.code == 0 {
		t.Errorf("restore over an existing file succeeded without --overwrite")
	}
	got := sqliteRows(t, target)
	if !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("restore --at between 4 and 5: rows %v", got)
	}
	e.must("restore", "latest", "--resource", resource, "--overwrite", "--target", target)
	if got := sqliteRows(t, target); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("restore of the latest state: rows %v", got)
	}
}

// sqliteRows checks a restored database and returns the ids of table t.
func sqliteRows(t *testing.T, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of %s: %q, %v", path, check, err)
	}
	rows, err := db.Query("SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
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
