package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/rewind-dr/rewind/internal/protect/sqlite"
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
func newVault(t testing.TB) sqlite.Vault {
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
	return sqlite.FromVault(r)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// openApp opens (creating) a WAL-mode database as an application would.
func openApp(t testing.TB, path string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"}
	db, err := sql.Open("sqlite", u.String())
	must(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS rows(id INTEGER PRIMARY KEY, batch INTEGER, at INTEGER, pad TEXT)`)
	must(t, err)
	_, err = db.Exec(`CREATE INDEX IF NOT EXISTS rows_batch ON rows(batch)`)
	must(t, err)
	return db
}

// insertBatch inserts n rows of batch in one transaction; pads make pages churn.
func insertBatch(t testing.TB, db *sql.DB, batch, n int, at time.Time) {
	t.Helper()
	tx, err := db.Begin()
	must(t, err)
	for i := 0; i < n; i++ {
		_, err := tx.Exec(`INSERT INTO rows(batch, at, pad) VALUES(?, ?, ?)`, batch, at.UnixNano(), strings.Repeat(fmt.Sprint(batch, i), 40))
		must(t, err)
	}
	must(t, tx.Commit())
}

// restoredIDs restores resource at (nil: latest) and returns the ids of its rows, ascending.
func restoredIDs(t testing.TB, v sqlite.Vault, resource string, at *time.Time) ([]int64, *sqlite.RestoreResult) {
	t.Helper()
	target := filepath.Join(t.TempDir(), "restored.db")
	res, err := sqlite.Restore(context.Background(), v, resource, target, sqlite.RestoreOptions{At: at})
	if err != nil {
		t.Fatalf("Restore at %v: %v", at, err)
	}
	return readIDs(t, target), res
}

func readIDs(t testing.TB, path string) []int64 {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro"}
	db, err := sql.Open("sqlite", u.String())
	must(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM rows ORDER BY id`)
	must(t, err)
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		must(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	must(t, rows.Err())
	return ids
}

func appIDs(t testing.TB, db *sql.DB, where string) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM rows ` + where + ` ORDER BY id`)
	must(t, err)
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		must(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	must(t, rows.Err())
	return ids
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
