package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/vault"
)

const resource = "orders-db"

// streamer runs Stream in the background.
type streamer struct {
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	end    postgres.LSN
}

func startStream(t *testing.T, v postgres.Vault, src string) *streamer {
	sctx, cancel := context.WithCancel(ctx)
	s := &streamer{cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- postgres.Stream(sctx, v, src, postgres.StreamOptions{Resource: resource, FlushEvery: 100 * time.Millisecond,
			OnFlush: func(p *vault.Point) {
				l, err := postgres.ParseLSN(p.Meta[postgres.MetaEndLSN])
				if err == nil {
					s.mu.Lock()
					s.end = l
					s.mu.Unlock()
				}
			}})
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// waitFor waits until the vault holds WAL up to lsn.
func (s *streamer) waitFor(t *testing.T, lsn postgres.LSN) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		end := s.end
		s.mu.Unlock()
		if end >= lsn {
			return
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("Stream ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL up to %s not in the vault after 20s (have %s)", lsn, end)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *streamer) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("Stream: %v", err)
	}
}

// TestPITR takes a base backup, streams WAL while rows are committed one by one, and
// restores to times, a transaction, an LSN and a named restore point, starting PostgreSQL on
// each restore and checking exactly which rows it has.
func TestPITR(t *testing.T) {
	srv := startServer(t)
	_, v := openVault(t)
	db := connect(t, srv.URL("rewind"))
	exec(t, db, "CREATE TABLE t (id int PRIMARY KEY, pad text)")
	exec(t, db, "INSERT INTO t SELECT 0, repeat('x', 100) FROM generate_series(1, 1)")
	exec(t, db, "DELETE FROM t")

	base, err := postgres.BaseBackup(ctx, v, srv.ReplicationURL(), postgres.BaseOptions{Resource: resource})
	if err != nil {
		t.Fatalf("BaseBackup: %v", err)
	}
	for _, k := range []string{postgres.MetaSystemID, postgres.MetaStartLSN, postgres.MetaEndLSN, postgres.MetaTimeline,
		postgres.MetaPGVersion, postgres.MetaLabel, postgres.MetaStartTime, postgres.MetaSegmentSize} {
		if base.Meta[k] == "" {
			t.Errorf("base point has no %s: %v", k, base.Meta)
		}
	}
	// A second base backup after a small change adds little: unchanged data deduplicates.
	exec(t, db, "INSERT INTO t VALUES (-1, 'small change')")
	second, err := postgres.BaseBackup(ctx, v, srv.ReplicationURL(), postgres.BaseOptions{Resource: resource})
	if err != nil {
		t.Fatalf("second BaseBackup: %v", err)
	}
	t.Logf("base backups: first %d bytes (%d added), second %d bytes, %d added (%.1f%%)", base.Summary.Bytes, base.Summary.BytesAdded,
		second.Summary.Bytes, second.Summary.BytesAdded, 100*float64(second.Summary.BytesAdded)/float64(second.Summary.Bytes))
	if second.Summary.BytesAdded*2 > second.Summary.Bytes {
		t.Errorf("second base backup added %d of %d bytes; dedup is not working", second.Summary.BytesAdded, second.Summary.Bytes)
	}
	exec(t, db, "DELETE FROM t")
	first := base
	base = second
	st := startStream(t, v, srv.ReplicationURL())

	commit := map[int]time.Time{}
	xid := map[int]string{}
	var lsnAfter12 string
	for i := 1; i <= 20; i++ {
		exec(t, db, "INSERT INTO t VALUES ($1, 'row')", i)
		var ts time.Time
		var x string
		if err := db.QueryRow(ctx, "SELECT pg_xact_commit_timestamp(xmin), xmin::text FROM t WHERE id = $1", i).Scan(&ts, &x); err != nil {
			t.Fatal(err)
		}
		commit[i], xid[i] = ts, x
		switch i {
		case 10:
			exec(t, db, "SELECT pg_create_restore_point('before-11')")
		case 12:
			if err := db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsnAfter12); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		if i%5 == 0 {
			// Every five rows are stored before the next are written, so the WAL spans
			// several points however slow the machine (the gap test below hides one).
			var lsn string
			if err := db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
				t.Fatal(err)
			}
			l, _ := postgres.ParseLSN(lsn)
			st.waitFor(t, l)
		}
	}
	var endText string
	if err := db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&endText); err != nil {
		t.Fatal(err)
	}
	end, _ := postgres.ParseLSN(endText)
	st.waitFor(t, end)
	st.stop(t)

	rep, err := postgres.Continuity(ctx, v, resource)
	if err != nil {
		t.Fatal(err)
	}
	// The first base backup's WAL was never streamed (streaming began at the second's
	// start segment): exactly that gap is reported.
	firstEnd, _ := postgres.ParseLSN(first.Meta[postgres.MetaEndLSN])
	secondStart, _ := postgres.ParseLSN(second.Meta[postgres.MetaStartLSN])
	if len(rep.Gaps) != 1 || rep.Gaps[0].From != firstEnd || rep.Gaps[0].To != secondStart-secondStart%(16<<20) {
		t.Fatalf("gaps %v, want exactly %s to the segment of %s", rep.Gaps, firstEnd, secondStart)
	}
	if len(rep.Spans) != 2 || rep.Spans[1].ToLSN < end || rep.Spans[0].ToLSN != firstEnd {
		t.Fatalf("spans %+v, want the first ending at its end, the second reaching %s", rep.Spans, end)
	}
	rng := rep.Range()
	if rng.From.After(commit[1]) || rng.To.Before(commit[20]) {
		t.Fatalf("range %v – %v does not hold the commits %v – %v", rng.From, rng.To, commit[1], commit[20])
	}

	mid := commit[5].Add(commit[6].Sub(commit[5]) / 2)
	exact := commit[5]
	cases := []struct {
		name   string
		target postgres.Target
		want   []int
	}{
		{"time-between-commits", postgres.Target{Time: &mid}, seq(1, 5)},
		{"time-inclusive", postgres.Target{Time: &exact}, seq(1, 5)},
		{"time-exclusive", postgres.Target{Time: &exact, Exclusive: true}, seq(1, 4)},
		{"xid-inclusive", postgres.Target{XID: xid[7]}, seq(1, 7)},
		{"xid-exclusive", postgres.Target{XID: xid[7], Exclusive: true}, seq(1, 6)},
		{"lsn", postgres.Target{LSN: lsnAfter12}, seq(1, 12)},
		{"restore-point", postgres.Target{Name: "before-11"}, seq(1, 10)},
		{"end", postgres.Target{}, seq(1, 20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(tempDir(t), "pgdata")
			res, err := postgres.Restore(ctx, v, resource, dir, tc.target, postgres.RestoreOptions{})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if res.Base.ID != base.ID || res.WALSegments == 0 {
				t.Fatalf("restored base %s with %d WAL segments, want %s", res.Base.ID.Short(), res.WALSegments, base.ID.Short())
			}
			fi, err := os.Stat(dir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("target mode: %v %v", fi.Mode(), err)
			}
			got := startRestored(t, srv, dir)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("restored rows %v, want %v", got, tc.want)
			}
		})
	}

	// Targets outside the range are refused with the range in the message.
	early := base.Time.Add(-time.Hour)
	late := rng.To.Add(time.Hour)
	for _, tg := range []postgres.Target{{Time: &early}, {Time: &late}, {LSN: "FFFF/0"}} {
		_, err := postgres.Restore(ctx, v, resource, filepath.Join(tempDir(t), "x"), tg, postgres.RestoreOptions{})
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("target %+v: err %v, want Invalid", tg, err)
		}
	}
	if _, err := postgres.Restore(ctx, v, resource, tempDir(t), postgres.Target{Name: "a", XID: "5"}, postgres.RestoreOptions{}); !errs.Is(err, errs.Invalid) {
		t.Errorf("two targets: %v, want Invalid", err)
	}
	// A non-empty target is refused.
	full := tempDir(t)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if _, err := postgres.Restore(ctx, v, resource, full, postgres.Target{}, postgres.RestoreOptions{}); !errs.Is(err, errs.Invalid) {
		t.Errorf("non-empty target: %v, want Invalid", err)
	}

	// Gap: hide one streamed WAL point; Continuity names exactly its range.
	pts, err := v.Points(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wal []*vault.Point
	for _, p := range pts {
		if p.Kind == postgres.KindWAL && p.Meta[postgres.MetaFile] == "" {
			wal = append(wal, p)
		}
	}
	if len(wal) < 3 {
		t.Fatalf("only %d WAL points", len(wal))
	}
	hidden := wal[len(wal)/2]
	gv := hiding{Vault: v, id: hidden.ID}
	rep, err = postgres.Continuity(ctx, gv, resource)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := postgres.ParseLSN(hidden.Meta[postgres.MetaStartLSN])
	to, _ := postgres.ParseLSN(hidden.Meta[postgres.MetaEndLSN])
	if len(rep.Gaps) != 2 || rep.Gaps[1].From != from || rep.Gaps[1].To != to || rep.Gaps[1].Timeline != 1 {
		t.Fatalf("gaps %v, want the first base's and exactly %s-%s", rep.Gaps, from, to)
	}
	if want := postgres.SegmentName(1, from, 16<<20); rep.Gaps[1].Segments[0] != want {
		t.Errorf("gap segments %v, want starting with %s", rep.Gaps[1].Segments, want)
	}
	t.Logf("gap report: %s", rep.Gaps[1])
	// A target after the gap is refused, naming the gap.
	if _, err := postgres.Restore(ctx, gv, resource, filepath.Join(tempDir(t), "y"), postgres.Target{LSN: endText}, postgres.RestoreOptions{}); !errs.Is(err, errs.Invalid) {
		t.Errorf("target after a gap: %v, want Invalid", err)
	} else {
		t.Logf("refusal: %v (%s)", err, errs.HintOf(err))
	}

	// WalFetch assembles a completed segment from streamed points; pushing it back is a
	// no-op, pushing altered content or another cluster's segment is refused.
	segName := postgres.SegmentName(1, from, 16<<20)
	segFile := filepath.Join(tempDir(t), segName)
	if err := postgres.WalFetch(ctx, v, resource, segName, segFile); err != nil {
		t.Fatalf("WalFetch: %v", err)
	}
	if err := postgres.WalPush(ctx, v, postgres.PushOptions{Resource: resource}, segFile); err != nil {
		t.Fatalf("WalPush of identical content: %v", err)
	}
	data, _ := os.ReadFile(segFile)
	data[4096+100] ^= 0xff
	os.WriteFile(segFile, data, 0o600)
	if err := postgres.WalPush(ctx, v, postgres.PushOptions{Resource: resource}, segFile); !errs.Is(err, errs.Conflict) {
		t.Errorf("WalPush of altered content: %v, want Conflict", err)
	}
	data[4096+100] ^= 0xff
	data[24] ^= 1 // system identifier
	os.WriteFile(segFile, data, 0o600)
	if err := postgres.WalPush(ctx, v, postgres.PushOptions{Resource: resource}, segFile); !errs.Is(err, errs.Conflict) {
		t.Errorf("WalPush of another cluster's segment: %v, want Conflict", err)
	}
	if err := postgres.WalFetch(ctx, v, resource, "0000000100000099000000FF", segFile); !errs.Is(err, errs.NotFound) {
		t.Errorf("WalFetch of a missing segment: %v, want NotFound", err)
	}
}

// hiding hides one point, as if it had been deleted.
type hiding struct {
	postgres.Vault
	id vault.ID
}

func (h hiding) Points(ctx context.Context) ([]*vault.Point, error) {
	pts, err := h.Vault.Points(ctx)
	return slices.DeleteFunc(pts, func(p *vault.Point) bool { return p.ID == h.id }), err
}
