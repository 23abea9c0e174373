package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/protect/sqlite"
)

// TestStreamLiveWriter runs Stream against an application goroutine that commits rows (and
// now and then checkpoints with TRUNCATE) on its own connection. Every restore must be a
// prefix of the committed rows (never a partial transaction), grow with time, and the latest
// must hold every row.
func TestStreamLiveWriter(t *testing.T) {
	v := newVault(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insertBatch(t, app, 0, 5, time.Now())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sqlite.Stream(ctx, v, path, sqlite.StreamOptions{Resource: "live", PollEvery: 5 * time.Millisecond,
			FlushEvery: 40 * time.Millisecond, CheckpointFrames: 60})
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	stop := make(chan struct{})
	go func() {
		defer wg.Done()
		for b := 1; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			insertBatch(t, app, b, 1+b%4, time.Now())
			if b%25 == 0 {
				var x, y, z int
				if err := app.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&x, &y, &z); err != nil && err != sql.ErrNoRows {
					t.Errorf("application checkpoint: %v", err)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Stream: %v", err)
	}
	all := appIDs(t, app, "")
	got, _ := restoredIDs(t, v, "live", nil)
	if !equalIDs(got, all) {
		t.Fatalf("latest restore: %d rows, want %d", len(got), len(all))
	}
	spans, err := sqlite.Range(context.Background(), v, "live")
	must(t, err)
	if len(spans) != 1 {
		t.Fatalf("range %v: want one span", spans)
	}
	prev := 0
	span := spans[0].To.Sub(spans[0].From)
	for i := 0; i <= 10; i++ {
		at := spans[0].From.Add(span * time.Duration(i) / 10)
		got, _ := restoredIDs(t, v, "live", &at)
		if len(got) < prev || !equalIDs(got, all[:len(got)]) {
			t.Fatalf("restore at %s: %d rows that are not a growing prefix of the committed ones", at, len(got))
		}
		prev = len(got)
		// Every restored row was committed before Rewind saw it, hence before at.
		var maxAt int64
		u := filepath.Join(t.TempDir(), "check.db")
		_, err := sqlite.Restore(context.Background(), v, "live", u, sqlite.RestoreOptions{At: &at})
		must(t, err)
		db := openApp(t, u)
		must(t, db.QueryRow(`SELECT coalesce(max(at), 0) FROM rows WHERE batch > 0`).Scan(&maxAt))
		if maxAt > at.UnixNano() {
			rows, _ := db.Query(`SELECT id, batch, at FROM rows WHERE at > ? ORDER BY id`, at.UnixNano())
			for rows.Next() {
				var id, b, a int64
				rows.Scan(&id, &b, &a)
				t.Logf("row id %d batch %d at %s", id, b, time.Unix(0, a).Format("05.000"))
			}
			rows.Close()
			var n int
			db.QueryRow(`SELECT count(*) FROM rows`).Scan(&n)
			t.Logf("restored %d rows (prefix check had %d)", n, len(got))
			t.Fatalf("restore at %s holds a row committed at %s", at, time.Unix(0, maxAt))
		}
	}
}

// BenchmarkCommitToDurable measures the lag from an application's commit to a stored,
// durable sqlite-wal point (read the WAL, store the frames, flush, save the point).
func BenchmarkCommitToDurable(b *testing.B) {
	ctx := context.Background()
	v := newVault(b)
	path := filepath.Join(b.TempDir(), "app.db")
	app := openApp(b, path)
	s, err := sqlite.OpenStream(ctx, v, path, sqlite.StreamOptions{Resource: "bench", FlushEvery: time.Nanosecond})
	must(b, err)
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		insertBatch(b, app, i, 1, time.Now())
		before := s.Stats.Points
		b.StartTimer()
		for s.Stats.Points == before {
			must(b, s.Tick(ctx))
		}
	}
}
