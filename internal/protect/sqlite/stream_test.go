package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
)

// TestRestoreAtEveryCommit ships batches one Tick at a time (an injected clock dates them)
// and restores between every two: exactly the batches seen by then, integrity_check ok.
// Midway the application checkpoints with TRUNCATE; Rewind's read transaction keeps the
// frames it has not shipped.
func TestRestoreAtEveryCommit(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insertBatch(t, app, 0, 20, time.Now())
	clk := newClock()
	s, err := sqlite.OpenStream(ctx, v, path, sqlite.StreamOptions{Now: clk.Now, Resource: "app", FlushEvery: 3 * time.Second, CheckpointFrames: 1 << 30, CheckpointEvery: time.Hour})
	must(t, err)
	defer s.Close()
	if s.Stats.Snapshots != 1 {
		t.Fatalf("snapshots = %d, want 1", s.Stats.Snapshots)
	}
	var times []time.Time
	var want [][]int64
	for b := 1; b <= 8; b++ {
		insertBatch(t, app, b, 15, clk.Now())
		if b == 4 {
			var busy, logN, ckpt int
			must(t, app.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logN, &ckpt))
			insertBatch(t, app, 100+b, 3, clk.Now()) // written after the application's checkpoint
		}
		now := clk.Add(time.Second)
		must(t, s.Tick(ctx))
		times = append(times, now)
		want = append(want, appIDs(t, app, ""))
	}
	must(t, s.Flush(ctx))
	if s.Stats.Points == 0 {
		t.Fatal("no sqlite-wal point written")
	}
	for i, at := range times {
		tts := []time.Time{at}
		if i+1 < len(times) {
			tts = append(tts, times[i+1].Add(-time.Millisecond))
		}
		for _, tt := range tts {
			got, res := restoredIDs(t, v, "app", &tt)
			if !equalIDs(got, want[i]) {
				t.Fatalf("restore at batch %d (%s): %d rows, want %d", i+1, tt, len(got), len(want[i]))
			}
			if res.State.After(tt) {
				t.Fatalf("restore state %s after the asked time %s", res.State, tt)
			}
		}
	}
	got, _ := restoredIDs(t, v, "app", nil)
	if !equalIDs(got, want[len(want)-1]) {
		t.Fatalf("latest restore: %d rows, want %d", len(got), len(want[len(want)-1]))
	}

	spans, err := sqlite.Range(ctx, v, "app")
	must(t, err)
	if len(spans) != 1 || !spans[0].To.Equal(times[len(times)-1]) {
		t.Fatalf("range = %v, want one span ending %s", spans, times[len(times)-1])
	}
	before := spans[0].From.Add(-time.Second)
	_, err = sqlite.Restore(ctx, v, "app", filepath.Join(t.TempDir(), "x.db"), sqlite.RestoreOptions{At: &before})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("restore before the range: %v, want Invalid", err)
	}
	target := filepath.Join(t.TempDir(), "exists.db")
	_, err = sqlite.Restore(ctx, v, "app", target, sqlite.RestoreOptions{})
	must(t, err)
	_, err = sqlite.Restore(ctx, v, "app", target, sqlite.RestoreOptions{})
	if !errs.Is(err, errs.Exists) {
		t.Fatalf("restore over an existing file: %v, want Exists", err)
	}
	_, err = sqlite.Restore(ctx, v, "app", target, sqlite.RestoreOptions{Overwrite: true})
	must(t, err)
}

// TestRewindCheckpointsRestartWAL: with a small checkpoint threshold Rewind checkpoints, the
// application's next write restarts the WAL, and the chain follows the new generation.
func TestRewindCheckpointsRestartWAL(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	clk := newClock()
	s, err := sqlite.OpenStream(ctx, v, path, sqlite.StreamOptions{Now: clk.Now, Resource: "app", CheckpointFrames: 8, CheckpointEvery: time.Hour})
	must(t, err)
	defer s.Close()
	var times []time.Time
	var want [][]int64
	for b := 1; b <= 12; b++ {
		insertBatch(t, app, b, 10, clk.Now())
		times = append(times, clk.Add(time.Second))
		must(t, s.Tick(ctx))
		want = append(want, appIDs(t, app, ""))
	}
	must(t, s.Flush(ctx))
	if s.Stats.Checkpoints == 0 || s.Stats.Snapshots != 1 {
		t.Fatalf("stats %+v: want checkpoints and a single snapshot", s.Stats)
	}
	for i, at := range times {
		got, _ := restoredIDs(t, v, "app", &at)
		if !equalIDs(got, want[i]) {
			t.Fatalf("restore at batch %d: %d rows, want %d", i+1, len(got), len(want[i]))
		}
	}
}

// TestResumeContinuesChain: a Streamer closed without storing its last commits (a kill) is
// followed by a new one that continues the same chain from the WAL.
func TestResumeContinuesChain(t *testing.T) {
	ctx := context.Background()
	v := newVault(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	clk := newClock()
	opts := sqlite.StreamOptions{Now: clk.Now, Resource: "app", FlushEvery: time.Hour, CheckpointFrames: 1 << 30, CheckpointEvery: time.Hour}
	s, err := sqlite.OpenStream(ctx, v, path, opts)
	must(t, err)
	insertBatch(t, app, 1, 10, clk.Now())
	clk.Add(time.Second)
	must(t, s.Tick(ctx))
	must(t, s.Flush(ctx))
	first := appIDs(t, app, "")
	firstAt := clk.Now()
	insertBatch(t, app, 2, 10, clk.Now())
	clk.Add(time.Second)
	must(t, s.Tick(ctx)) // shipped but never stored: the process dies
	must(t, s.Close())

	insertBatch(t, app, 3, 10, clk.Now())
	clk.Add(time.Minute)
	s2, err := sqlite.OpenStream(ctx, v, path, opts)
	must(t, err)
	defer s2.Close()
	if !s2.Stats.Resumed || s2.Stats.Snapshots != 0 {
		t.Fatalf("second streamer %+v: want it to resume without a snapshot", s2.Stats)
	}
	resumedAt := clk.Now()
	insertBatch(t, app, 4, 10, clk.Now())
	clk.Add(time.Second)
	must(t, s2.Tick(ctx))
	must(t, s2.Flush(ctx))
	all := appIDs(t, app, "")
	got, _ := restoredIDs(t, v, "app", nil)
	if !equalIDs(got, all) {
		t.Fatalf("latest restore after resume: %d rows, want %d", len(got), len(all))
	}
	got, _ = restoredIDs(t, v, "app", &firstAt)
	if !equalIDs(got, first) {
		t.Fatalf("restore before the kill: %d rows, want %d", len(got), len(first))
	}
	spans, err := sqlite.Range(ctx, v, "app")
	must(t, err)
	if len(spans) != 2 || !spans[1].From.Equal(resumedAt) {
		t.Fatalf("range %v: want a gap while nothing followed the database, then a span from %s", spans, resumedAt)
	}
	gap := spans[0].To.Add(time.Second)
	_, err = sqlite.Restore(ctx, v, "app", filepath.Join(t.TempDir(), "gap.db"), sqlite.RestoreOptions{At: &gap})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("restore inside the gap: %v, want Invalid", err)
	}
}
