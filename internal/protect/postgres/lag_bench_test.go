package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/protect/postgres"
	pgtest "github.com/rewind-dr/rewind/internal/testenv/postgres"
	"github.com/rewind-dr/rewind/internal/vault"
)

// BenchmarkWALLag measures the time from a commit returning to the client until Stream has
// stored the WAL holding it as a durable vault point (one op = one committed row), with
// Stream storing a point every 10ms. The server commits synchronously (its local flush
// wakes the WAL sender at once); fsync is off on the test server.
func BenchmarkWALLag(b *testing.B) {
	srv := pgtest.Start(b, pgtest.Options{ReplicationUser: true, Conf: map[string]string{
		"synchronous_commit": "on",
		"wal_keep_size":      "'256MB'",
	}})
	_, v := openVault(b)
	db := connect(b, srv.URL(pgtest.DefaultDatabase))
	exec(b, db, "CREATE TABLE t (id int PRIMARY KEY, pad text)")
	if _, err := postgres.BaseBackup(ctx, v, srv.ReplicationURL(), postgres.BaseOptions{Resource: resource}); err != nil {
		b.Fatalf("BaseBackup: %v", err)
	}
	var durable atomic.Uint64 // the end of the WAL stored so far
	flushed := make(chan struct{}, 1)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- postgres.Stream(sctx, v, srv.ReplicationURL(), postgres.StreamOptions{Resource: resource,
			FlushEvery: 10 * time.Millisecond,
			OnFlush: func(p *vault.Point) {
				if l, err := postgres.ParseLSN(p.Meta[postgres.MetaEndLSN]); err == nil {
					durable.Store(uint64(l))
					select {
					case flushed <- struct{}{}:
					default:
					}
				}
			}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Stream: %v", err)
		}
	}()
	// commit inserts row id and returns the WAL position after its commit record.
	commit := func(id int) postgres.LSN {
		exec(b, db, "INSERT INTO t VALUES ($1, 'x')", id)
		var text string
		if err := db.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
			b.Fatal(err)
		}
		lsn, err := postgres.ParseLSN(text)
		if err != nil {
			b.Fatal(err)
		}
		return lsn
	}
	wait := func(lsn postgres.LSN) {
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for postgres.LSN(durable.Load()) < lsn {
			select {
			case <-flushed:
			case err := <-done:
				done <- err
				b.Fatalf("Stream ended: %v", err)
			case <-timeout.C:
				b.Fatalf("WAL up to %s not durable after 30s (have %s)", lsn, postgres.LSN(durable.Load()))
			}
		}
	}
	// The first flush happens once streaming has started.
	wait(commit(0))
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		wait(commit(i))
	}
}
