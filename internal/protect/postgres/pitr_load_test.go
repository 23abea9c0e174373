package postgres_test

import (
	"bytes"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rewind-dr/rewind/internal/protect/postgres"
	pgtest "github.com/rewind-dr/rewind/internal/testenv/postgres"
)

// marker is one committed row of table t, with where and when it committed.
type marker struct {
	at  time.Time // commit timestamp
	xid string
	lsn string // the WAL insert position right after the commit
	// pgbench transactions committed before the marker's insert began, and after its commit.
	before, after int64
}

// insertMarker commits row id of t on its own and records it.
func insertMarker(t *testing.T, db *pgx.Conn, id int) marker {
	t.Helper()
	var m marker
	if err := db.QueryRow(ctx, "SELECT count(*) FROM pgbench_history").Scan(&m.before); err != nil {
		t.Fatal(err)
	}
	exec(t, db, "INSERT INTO t VALUES ($1, 'marker')", id)
	if err := db.QueryRow(ctx, `SELECT pg_xact_commit_timestamp(xmin), xmin::text, pg_current_wal_insert_lsn()::text,
		(SELECT count(*) FROM pgbench_history) FROM t WHERE id = $1`, id).Scan(&m.at, &m.xid, &m.lsn, &m.after); err != nil {
		t.Fatal(err)
	}
	return m
}

// restoredState is what a restored cluster holds: the marker ids, the pgbench transactions,
// and whether pgbench's balances add up (they do in any transactionally consistent state).
type restoredState struct {
	ids        []int
	history    int64
	consistent bool
	timeline   string // of the WAL the restored server writes after promotion
}

// openRestored starts PostgreSQL on a restored data directory, waits until recovery ended
// and returns the server and a connection to its database.
func openRestored(t *testing.T, src *pgtest.Server, dir string) (*pgtest.Server, *pgx.Conn) {
	t.Helper()
	s := pgtest.StartDataDir(t, dir, src.Password, map[string]string{"archive_mode": "off"})
	c := connect(t, s.URL(pgtest.DefaultDatabase))
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rec bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			t.Fatalf("restored server: %v\n%s", err, s.Output())
		}
		if !rec {
			return s, c
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored server still in recovery after 60s:\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readRestored reads a restored cluster's markers and the timeline it writes on, and with
// pgbench set, pgbench's transactions and whether its balances add up; then stops it.
func readRestored(t *testing.T, s *pgtest.Server, c *pgx.Conn, pgbench bool) restoredState {
	t.Helper()
	var st restoredState
	rows, err := c.Query(ctx, "SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatalf("restored server: %v\n%s", err, s.Output())
	}
	if st.ids, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").Scan(&st.timeline); err != nil {
		t.Fatalf("restored server: %v\n%s", err, s.Output())
	}
	if pgbench {
		if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgbench_history),
			(SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
			AND (SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
			AND (SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)`).
			Scan(&st.history, &st.consistent); err != nil {
			t.Fatalf("restored server: %v\n%s", err, s.Output())
		}
	}
	c.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Errorf("stop restored server: %v", err)
	}
	return st
}

// TestPITRUnderLoad restores while pgbench wrote concurrently: markers are committed between
// pgbench's transactions while Stream ships the WAL, and restores to times between markers,
// an LSN, transaction IDs (inclusive and exclusive) and a named restore point each start and
// hold exactly the markers before the target, with pgbench's tables consistent and holding
// the transactions committed before it.
func TestPITRUnderLoad(t *testing.T) {
	srv := startServer(t)
	_, v := openVault(t)
	db := connect(t, srv.URL(pgtest.DefaultDatabase))
	exec(t, db, "CREATE TABLE t (id int PRIMARY KEY, pad text)")
	pgbench := srv.Bin("pgbench")
	if out, err := osexec.Command(pgbench, "-i", "-s", "1", "-q", srv.URL(pgtest.DefaultDatabase)).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if _, err := postgres.BaseBackup(ctx, v, srv.ReplicationURL(), postgres.BaseOptions{Resource: resource}); err != nil {
		t.Fatalf("BaseBackup: %v", err)
	}
	st := startStream(t, v, srv.ReplicationURL())

	// Two clients at a limited rate, so that a slow, shared machine keeps up.
	load := osexec.Command(pgbench, "-n", "-c", "2", "-j", "2", "-T", "4", "-R", "200", srv.URL(pgtest.DefaultDatabase))
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatalf("pgbench: %v", err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	t.Cleanup(func() {
		if load.ProcessState == nil {
			load.Process.Kill()
			<-loadDone
		}
	})
	// Markers begin once pgbench is committing.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int64
		if err := db.QueryRow(ctx, "SELECT count(*) FROM pgbench_history").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbench committed nothing in 30s:\n%s", loadOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	const markers = 12
	m := make([]marker, markers+1) // m[i] is marker i
	for i := 1; i <= markers; i++ {
		m[i] = insertMarker(t, db, i)
		if i == 6 {
			exec(t, db, "SELECT pg_create_restore_point('after-6')")
		}
		time.Sleep(100 * time.Millisecond) // spacing, so that pgbench commits between markers
	}
	select {
	case err := <-loadDone:
		if err != nil {
			t.Fatalf("pgbench: %v\n%s", err, loadOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("pgbench -T 4 still running after 60s")
	}
	var total int64
	var endText string
	if err := db.QueryRow(ctx, "SELECT count(*), pg_current_wal_insert_lsn()::text FROM pgbench_history").Scan(&total, &endText); err != nil {
		t.Fatal(err)
	}
	if m[markers].before <= m[1].after {
		t.Fatalf("pgbench committed nothing between the first and the last marker (%d transactions in all)", total)
	}
	end, _ := postgres.ParseLSN(endText)
	st.waitFor(t, end)
	st.stop(t)
	t.Logf("pgbench: %d transactions; markers 1–%d between transactions %d and %d; WAL to %s", total, markers,
		m[1].before, m[markers].after, endText)

	rep, err := postgres.Continuity(ctx, v, resource)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Spans) != 1 || rep.Spans[0].ToLSN < end {
		t.Fatalf("continuity: spans %+v gaps %v, want one span to %s", rep.Spans, rep.Gaps, end)
	}

	between := func(i int) *time.Time { // between the commits of markers i and i+1
		ts := m[i].at.Add(m[i+1].at.Sub(m[i].at) / 2)
		return &ts
	}
	cases := []struct {
		name   string
		target postgres.Target
		last   int // the markers 1..last must be restored (last < markers)
	}{
		{"time-3-4", postgres.Target{Time: between(3)}, 3},
		{"time-8-9", postgres.Target{Time: between(8)}, 8},
		{"xid-5-inclusive", postgres.Target{XID: m[5].xid}, 5},
		{"xid-10-exclusive", postgres.Target{XID: m[10].xid, Exclusive: true}, 9},
		{"lsn-after-7", postgres.Target{LSN: m[7].lsn}, 7},
		{"restore-point-after-6", postgres.Target{Name: "after-6"}, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(tempDir(t), "pgdata")
			if _, err := postgres.Restore(ctx, v, resource, dir, tc.target, postgres.RestoreOptions{}); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			s, c := openRestored(t, srv, dir)
			got := readRestored(t, s, c, true)
			if !slices.Equal(got.ids, seq(1, tc.last)) {
				t.Errorf("restored markers %v, want 1–%d", got.ids, tc.last)
			}
			if !got.consistent {
				t.Errorf("pgbench's balances do not add up in the restored cluster")
			}
			// The concurrent load is restored to the same moment as the markers.
			lo, hi := m[tc.last].before, m[tc.last+1].after
			if got.history < lo || got.history > hi {
				t.Errorf("restored %d pgbench transactions, want between %d and %d", got.history, lo, hi)
			}
		})
	}
}

// TestPITRAfterPromotion streams WAL from a primary with a streaming standby, fails over
// (the primary stops, the standby is promoted to timeline 2), streams from the promoted
// server under the same resource, and restores to times on timeline 2 and before the
// switch: each restored cluster starts with exactly the right markers, on a timeline after 2.
func TestPITRAfterPromotion(t *testing.T) {
	primary := startServer(t)
	_, v := openVault(t)
	db := connect(t, primary.URL(pgtest.DefaultDatabase))
	exec(t, db, "CREATE TABLE t (id int PRIMARY KEY, pad text)")
	if _, err := postgres.BaseBackup(ctx, v, primary.ReplicationURL(), postgres.BaseOptions{Resource: resource}); err != nil {
		t.Fatalf("BaseBackup: %v", err)
	}
	standby := pgtest.StartStandby(t, primary, nil)
	st := startStream(t, v, primary.ReplicationURL())

	commit := map[int]time.Time{}
	insert := func(db *pgx.Conn, from, to int) string {
		t.Helper()
		for i := from; i <= to; i++ {
			exec(t, db, "INSERT INTO t VALUES ($1, 'row')", i)
			var ts time.Time
			if err := db.QueryRow(ctx, "SELECT pg_xact_commit_timestamp(xmin) FROM t WHERE id = $1", i).Scan(&ts); err != nil {
				t.Fatal(err)
			}
			commit[i] = ts
			time.Sleep(20 * time.Millisecond)
		}
		var lsn string
		if err := db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	// Timeline 1: rows 1–6, shipped to the vault and to the standby.
	lsnText := insert(db, 1, 6)
	lsn, _ := postgres.ParseLSN(lsnText)
	st.waitFor(t, lsn)
	st.stop(t)
	if err := standby.WaitReplayed(ctx, lsnText, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Fail over: the primary stops (its last WAL reaches the standby, not the vault), the
	// standby is promoted.
	db.Close(ctx)
	if err := primary.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// Protection now points at the promoted server, under the same resource: it ships the
	// rest of timeline 1 from there, then timeline 2.
	st = startStream(t, v, standby.ReplicationURL())
	db2 := connect(t, standby.URL(pgtest.DefaultDatabase))
	var tli string
	if err := db2.QueryRow(ctx, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").Scan(&tli); err != nil || tli != "00000002" {
		t.Fatalf("promoted server writes timeline %q (%v), want 00000002", tli, err)
	}
	lsnText = insert(db2, 7, 12)
	lsn, _ = postgres.ParseLSN(lsnText)
	st.waitFor(t, lsn)
	st.stop(t)

	rep, err := postgres.Continuity(ctx, v, resource)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Timeline != 2 || len(rep.Spans) != 1 || rep.Spans[0].Timeline != 2 || rep.Spans[0].ToLSN < lsn {
		t.Fatalf("continuity after the promotion: timeline %d, spans %+v, gaps %v; want one span on timeline 2 to %s",
			rep.Timeline, rep.Spans, rep.Gaps, lsn)
	}
	if rng := rep.Range(); rng.To.Before(commit[12]) {
		t.Fatalf("restorable to %v, before the last commit on timeline 2 %v", rng.To, commit[12])
	}

	mid := func(i int) *time.Time {
		ts := commit[i].Add(commit[i+1].Sub(commit[i]) / 2)
		return &ts
	}
	cases := []struct {
		name   string
		target postgres.Target
		last   int
	}{
		{"timeline-2-time-9-10", postgres.Target{Time: mid(9)}, 9},
		{"timeline-1-time-4-5", postgres.Target{Time: mid(4)}, 4},
		{"end", postgres.Target{}, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(tempDir(t), "pgdata")
			res, err := postgres.Restore(ctx, v, resource, dir, tc.target, postgres.RestoreOptions{})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			s, c := openRestored(t, primary, dir)
			got := readRestored(t, s, c, false)
			if !slices.Equal(got.ids, seq(1, tc.last)) {
				t.Errorf("restored rows %v, want 1–%d", got.ids, tc.last)
			}
			n, err := strconv.ParseUint(got.timeline, 16, 32)
			if err != nil || n < 3 {
				t.Errorf("the restored server writes timeline %q after recovery, want a new timeline after 2", got.timeline)
			}
			t.Logf("restored %d WAL segments; the restored server continues on timeline %d", res.WALSegments, n)
		})
	}
}
