package sqlstore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/catalog/catalogtest"
	"github.com/rewind-dr/rewind/internal/catalog/sqlstore"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/testenv/postgres"
)

var ctx = context.Background()

func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), sqlstore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store { return openSQLite(t) })
}

// TestPostgres runs the suite and the PostgreSQL-specific tests against one real server;
// each store gets a fresh database on it.
func TestPostgres(t *testing.T) {
	srv := postgres.Start(t, postgres.Options{})
	t.Run("Conformance", func(t *testing.T) {
		catalogtest.Run(t, func(t *testing.T) catalog.Store {
			s, err := sqlstore.Open(ctx, srv.CreateDatabase(t), sqlstore.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if s.Dialect() != "postgres" {
				t.Fatalf("dialect %s", s.Dialect())
			}
			return s
		})
	})
	t.Run("Errors", func(t *testing.T) { testPostgresErrors(t, srv) })
	t.Run("ConcurrentOpen", func(t *testing.T) { testPostgresConcurrentOpen(t, srv) })
}

func TestOpenDSN(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		dsn  string
		kind errs.Kind
	}{
		{"", errs.Invalid},
		{"mysql://localhost/db", errs.Invalid},
		{"sqlite://", errs.Invalid},
		{filepath.Join(dir, "a?b.db"), errs.Invalid},
		{filepath.Join(dir, "missing", "catalog.db"), errs.NotFound},
		{"postgres://u:secret@127.0.0.1:notaport/db", errs.Invalid},
		{"postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", errs.Unavailable},
	} {
		s, err := sqlstore.Open(ctx, c.dsn, sqlstore.Options{})
		if err == nil {
			s.Close()
		}
		if !errs.Is(err, c.kind) {
			t.Errorf("Open(%q): %v (kind %v), want kind %v", c.dsn, err, errs.KindOf(err), c.kind)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): the error shows the password: %v", c.dsn, err)
		}
	}
	// Both spellings of a SQLite file open the same catalog.
	path := filepath.Join(dir, "c.db")
	for _, dsn := range []string{path, "sqlite://" + path} {
		s, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if s.Dialect() != "sqlite" {
			t.Fatalf("Open(%q): dialect %s", dsn, s.Dialect())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func testPostgresErrors(t *testing.T, srv *postgres.Server) {
	u := srv.URL("no_such_database")
	_, err := sqlstore.Open(ctx, u, sqlstore.Options{})
	if !errs.Is(err, errs.NotFound) {
		t.Errorf("missing database: %v (kind %v), want not found", err, errs.KindOf(err))
	}
	bad := "postgres://postgres:wrong@127.0.0.1:" + strconv.Itoa(srv.Port) + "/rewind?sslmode=disable"
	_, err = sqlstore.Open(ctx, bad, sqlstore.Options{})
	if !errs.Is(err, errs.Unauthorized) {
		t.Errorf("wrong password: %v (kind %v), want unauthorized", err, errs.KindOf(err))
	}
}

// TestClock checks that the injected clock fixes each transaction's time.
func TestClock(t *testing.T) {
	clock := time.Date(2032, 2, 3, 4, 5, 6, 7891234, time.FixedZone("X", 3600))
	s, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := time.Date(2032, 2, 3, 3, 5, 6, 7891000, time.UTC)
	err = s.Tx(ctx, func(tx catalog.Tx) error {
		if !tx.Now().Equal(want) || tx.Now().Location() != time.UTC {
			t.Fatalf("Now %v, want %v", tx.Now(), want)
		}
		j := &catalog.Job{Kind: catalog.JobBackup}
		if err := tx.CreateJob(ctx, j); err != nil {
			return err
		}
		got, err := tx.GetJob(ctx, j.ID)
		if err == nil && (!got.CreatedAt.Equal(want) || got.ID[:10] != catalog.NewID(want)[:10]) {
			t.Fatalf("job created %v with ID %s, want %v and an ID of that millisecond", got.CreatedAt, got.ID, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReopen checks that migrations are recorded and not applied twice, and that the data
// survives a reopen.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	for i := 0; i < 2; i++ {
		s, err := sqlstore.Open(ctx, path, sqlstore.Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		err = s.Tx(ctx, func(tx catalog.Tx) error {
			if err := tx.UpsertSite(ctx, catalog.Site{Name: "s" + strconv.Itoa(i+1)}); err != nil {
				return err
			}
			sites, err := tx.ListSites(ctx)
			if len(sites) != i+1 {
				t.Fatalf("open %d: %d sites, want %d", i, len(sites), i+1)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if v := sqlstore.SchemaVersion("sqlite"); v < 1 || v != sqlstore.SchemaVersion("postgres") {
		t.Fatalf("schema versions: sqlite %d, postgres %d", v, sqlstore.SchemaVersion("postgres"))
	}
}

// testPostgresConcurrentOpen opens one fresh catalog from several goroutines at once, as
// servers starting together do: the advisory lock makes exactly one apply the migrations.
func testPostgresConcurrentOpen(t *testing.T, srv *postgres.Server) {
	url := srv.CreateDatabase(t)
	const n = 6
	stores := make([]*sqlstore.Store, n)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := sqlstore.Open(ctx, url, sqlstore.Options{})
			stores[i] = s
			errc <- err
		}(i)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	for _, s := range stores {
		defer s.Close()
	}
	// Every store sees one catalog: a job one creates, another reads.
	j := &catalog.Job{Kind: catalog.JobBackup, DedupKey: "k"}
	if err := stores[0].Tx(ctx, func(tx catalog.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
		t.Fatal(err)
	}
	err := stores[n-1].Tx(ctx, func(tx catalog.Tx) error {
		_, err := tx.GetJob(ctx, j.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteTwoStores opens one SQLite file twice, as a server and the command line do:
// writes from both succeed (the busy timeout waits for the other's lock).
func TestSQLiteTwoStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, err := sqlstore.Open(ctx, path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlstore.Open(ctx, path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, s := range []*sqlstore.Store{a, b} {
		wg.Add(1)
		go func(s *sqlstore.Store) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := s.Tx(ctx, func(tx catalog.Tx) error {
					return tx.CreateJob(ctx, &catalog.Job{Kind: catalog.JobBackup})
				}); err != nil {
					errc <- err
					return
				}
			}
		}(s)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	err = a.Tx(ctx, func(tx catalog.Tx) error {
		jobs, err := tx.ListJobs(ctx, catalog.JobFilter{})
		if len(jobs) != 40 {
			t.Fatalf("%d jobs, want 40", len(jobs))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
