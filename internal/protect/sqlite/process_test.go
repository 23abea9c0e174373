//go:build linux

package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
)

// The test binary doubles as the other processes of these tests: with helperEnv set,
// TestMain runs the named helper instead of the tests and exits.
const (
	helperEnv      = "REWIND_SQLITE_TEST_HELPER" // "write" or "probe"
	helperDBEnv    = "REWIND_SQLITE_TEST_DB"
	helperBatchEnv = "REWIND_SQLITE_TEST_BATCH"
	helperRowsEnv  = "REWIND_SQLITE_TEST_ROWS"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "write":
		os.Exit(runHelper(helperWrite))
	case "probe":
		os.Exit(runHelper(helperProbe))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

func runHelper(f func(path string) error) int {
	if err := f(os.Getenv(helperDBEnv)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperWrite is a short-lived writer: it opens the database, commits one transaction of
// REWIND_SQLITE_TEST_ROWS rows of batch REWIND_SQLITE_TEST_BATCH, prints their ids and
// closes the database (its last connection: SQLite then tries to checkpoint and delete the
// WAL unless another process still has the database open).
func helperWrite(path string) error {
	batch, err := strconv.Atoi(os.Getenv(helperBatchEnv))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(os.Getenv(helperRowsEnv))
	if err != nil {
		return err
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var ids []int64
	for i := 0; i < n; i++ {
		r, err := tx.Exec(`INSERT INTO rows(batch, at, pad) VALUES(?, ?, ?)`, batch, time.Now().UnixNano(), strings.Repeat(fmt.Sprint(batch, i), 40))
		if err != nil {
			return err
		}
		id, err := r.LastInsertId()
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Println(id)
	}
	return nil
}

// SQLite's unix locking: a connection's SHARED lock on the database is a read lock on the
// bytes [sharedFirst, sharedFirst+sharedSize) of the database file.
const (
	sharedFirst = 0x40000000 + 2
	sharedSize  = 510
)

// helperProbe prints the pid of a process holding a lock that conflicts with a write lock
// on the SHARED range of the database file, or "none".
func helperProbe(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: sharedFirst, Len: sharedSize}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return err
	}
	if lk.Type == syscall.F_UNLCK {
		fmt.Println("none")
		return nil
	}
	fmt.Println("pid", lk.Pid)
	return nil
}

func runHelperProcess(t testing.TB, mode, path string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode, helperDBEnv + "=" + path}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s: %v: %s", mode, err, stderr.String())
	}
	return string(out)
}

// writeInOtherProcess commits n rows of batch in a separate, short-lived process and
// returns their ids.
func writeInOtherProcess(t testing.TB, path string, batch, n int) []int64 {
	t.Helper()
	out := runHelperProcess(t, "write", path, fmt.Sprintf("%s=%d", helperBatchEnv, batch), fmt.Sprintf("%s=%d", helperRowsEnv, n))
	return parseIDs(t, out, n)
}

// writeWithCLI commits n rows of batch with the sqlite3 command-line shell (the system's
// SQLite, often older than the one linked into Rewind) and returns their ids.
func writeWithCLI(t testing.TB, path string, batch, n int) []int64 {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatalf("the sqlite3 shell is needed to test writers of another SQLite version: %v (install it, e.g. apt-get install sqlite3)", err)
	}
	script := fmt.Sprintf(".timeout 5000\nWITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < %d) "+
		"INSERT INTO rows(batch, at, pad) SELECT %d, 0, hex(randomblob(150)) || i FROM c RETURNING id;\n", n-1, batch)
	cmd := exec.Command(bin, "-batch", path)
	cmd.Stdin = strings.NewReader(script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("sqlite3 %s: %v: %s", path, err, stderr.String())
	}
	return parseIDs(t, string(out), n)
}

func parseIDs(t testing.TB, out string, n int) []int64 {
	t.Helper()
	var ids []int64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		id, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("writer output %q: %v", out, err)
		}
		ids = append(ids, id)
	}
	if len(ids) != n {
		t.Fatalf("writer wrote %d rows, want %d", len(ids), n)
	}
	return ids
}

// assertLockedByUs fails unless another process sees this process's SHARED lock on the
// database file: without it, the last connection of another process to close checkpoints
// the WAL into the database and deletes it behind Rewind's back.
func assertLockedByUs(t *testing.T, path, when string) {
	t.Helper()
	got := strings.TrimSpace(runHelperProcess(t, "probe", path))
	if want := fmt.Sprint("pid ", os.Getpid()); got != want {
		t.Fatalf("%s: lock probe on %s says %q, want %q (Rewind's SHARED lock is gone)", when, filepath.Base(path), got, want)
	}
}

// newOtherProcessDB creates a WAL-mode database with a few rows and closes it, so that no
// connection of this process stays open: only Rewind's own.
func newOtherProcessDB(t *testing.T) (string, []int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insertBatch(t, app, 0, 10, time.Now())
	ids := appIDs(t, app, "")
	must(t, app.Close())
	return path, ids
}

// TestStreamSeesOtherProcessWriters: short-lived writer processes (open, commit, close) are
// followed commit by commit; none of them may checkpoint and delete the WAL while Rewind
// streams. Every restore, at the end and between two writers, holds exactly the rows
// committed by then.
func TestStreamSeesOtherProcessWriters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		write     func(t testing.TB, path string, batch, n int) []int64
		ckptFrame int
	}{
		{"go writer, rewind checkpoints", writeInOtherProcess, 8},
		{"sqlite3 shell", writeWithCLI, 1 << 30},
		{"sqlite3 shell, rewind checkpoints", writeWithCLI, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			v := newVault(t)
			path, all := newOtherProcessDB(t)
			clk := newClock()
			s, err := sqlite.OpenStream(ctx, v, path, sqlite.StreamOptions{Now: clk.Now, Resource: "app", FlushEvery: 2 * time.Second,
				CheckpointFrames: tc.ckptFrame, CheckpointEvery: time.Hour})
			must(t, err)
			defer s.Close()
			const writers = 6
			var times []time.Time
			var want [][]int64
			for b := 1; b <= writers; b++ {
				all = append(all, tc.write(t, path, b, 10)...)
				at := clk.Add(time.Second)
				must(t, s.Tick(ctx))
				times = append(times, at)
				want = append(want, append([]int64(nil), all...))
			}
			must(t, s.Flush(ctx))
			if s.Stats.Commits != writers || s.Stats.Snapshots != 1 {
				t.Fatalf("stats %+v: want %d commits shipped and a single snapshot", s.Stats, writers)
			}
			if tc.ckptFrame < 100 && s.Stats.Checkpoints == 0 {
				t.Fatalf("stats %+v: want Rewind checkpoints", s.Stats)
			}
			got, _ := restoredIDs(t, v, "app", nil)
			if !equalIDs(got, all) {
				t.Fatalf("latest restore: %d rows, want %d", len(got), len(all))
			}
			for i, at := range times {
				tts := []time.Time{at}
				if i+1 < len(times) {
					tts = append(tts, at.Add(500*time.Millisecond)) // after writer i+1 was seen, before writer i+2
				}
				for _, tt := range tts {
					got, _ := restoredIDs(t, v, "app", &tt)
					if !equalIDs(got, want[i]) {
						t.Fatalf("restore at %s (after writer %d): %d rows, want %d", tt, i+1, len(got), len(want[i]))
					}
				}
			}
			spans, err := sqlite.Range(ctx, v, "app")
			must(t, err)
			if len(spans) != 1 || !spans[0].To.Equal(times[len(times)-1]) {
				t.Fatalf("range %v: want one span to %s", spans, times[len(times)-1])
			}
		})
	}
}

// TestStreamerKeepsDatabaseLocked: while a Streamer is open, another process sees its SHARED
// lock on the database file, after its snapshot, its ticks, its checkpoints, and a Snapshot
// of the same database taken meanwhile in the same process.
func TestStreamerKeepsDatabaseLocked(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	path, _ := newOtherProcessDB(t)
	s, err := sqlite.OpenStream(ctx, v, path, sqlite.StreamOptions{Resource: "app", CheckpointEvery: time.Hour})
	must(t, err)
	defer s.Close()
	assertLockedByUs(t, path, "after OpenStream")
	writeInOtherProcess(t, path, 1, 5)
	must(t, s.Tick(ctx))
	assertLockedByUs(t, path, "after Tick")
	must(t, s.Checkpoint(ctx))
	assertLockedByUs(t, path, "after Checkpoint")
	_, err = sqlite.Snapshot(ctx, v, path, sqlite.SnapshotOptions{Resource: "other"})
	must(t, err)
	assertLockedByUs(t, path, "after a Snapshot in the same process")
	writeInOtherProcess(t, path, 2, 5)
	must(t, s.Tick(ctx))
	if s.Stats.Commits != 2 {
		t.Fatalf("stats %+v: want the 2 commits of the other process", s.Stats)
	}
	must(t, s.Close())
	if got := strings.TrimSpace(runHelperProcess(t, "probe", path)); got != "none" {
		t.Fatalf("after Close: lock probe says %q, want none", got)
	}
}

// TestLostLockStartsNewChain: when this process's locks on the database are dropped anyway
// (here by opening and closing a descriptor of it, the POSIX pitfall) an older SQLite's last
// connection to close checkpoints the WAL into the database and deletes it. The Streamer
// notices the -wal file is gone, opens the database again and starts a new chain with a
// snapshot: Range shows the gap, and no restore lacks the commit silently.
func TestLostLockStartsNewChain(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	path, all := newOtherProcessDB(t)
	clk := newClock()
	s, err := sqlite.OpenStream(ctx, v, path, sqlite.StreamOptions{Now: clk.Now, Resource: "app", CheckpointFrames: 1 << 30, CheckpointEvery: time.Hour})
	must(t, err)
	defer s.Close()
	all = append(all, writeWithCLI(t, path, 1, 10)...)
	first := append([]int64(nil), all...)
	firstAt := clk.Add(time.Second)
	must(t, s.Tick(ctx))
	must(t, s.Flush(ctx))

	f, err := os.Open(path)
	must(t, err)
	must(t, f.Close()) // releases every lock this process holds on the database
	all = append(all, writeWithCLI(t, path, 2, 10)...)
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("the writer did not delete the WAL (stat: %v): the scenario did not happen", err)
	}
	clk.Add(time.Second)
	must(t, s.Tick(ctx))
	if s.Stats.Snapshots != 2 {
		t.Fatalf("stats %+v: want a new snapshot after the WAL was deleted", s.Stats)
	}
	assertLockedByUs(t, path, "after the new snapshot")
	all = append(all, writeWithCLI(t, path, 3, 10)...)
	clk.Add(time.Second)
	must(t, s.Tick(ctx))
	must(t, s.Flush(ctx))

	got, _ := restoredIDs(t, v, "app", nil)
	if !equalIDs(got, all) {
		t.Fatalf("latest restore: %d rows, want %d", len(got), len(all))
	}
	got, _ = restoredIDs(t, v, "app", &firstAt)
	if !equalIDs(got, first) {
		t.Fatalf("restore before the loss: %d rows, want %d", len(got), len(first))
	}
	spans, err := sqlite.Range(ctx, v, "app")
	must(t, err)
	if len(spans) != 2 || !spans[0].To.Equal(firstAt) {
		t.Fatalf("range %v: want a span to %s, a gap while the commit was not followed, then a new span", spans, firstAt)
	}
	gap := firstAt.Add(500 * time.Millisecond)
	_, err = sqlite.Restore(ctx, v, "app", filepath.Join(t.TempDir(), "gap.db"), sqlite.RestoreOptions{At: &gap})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("restore inside the gap: %v, want Invalid", err)
	}
}
