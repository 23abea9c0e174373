package postgres_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rewind-dr/rewind/internal/testenv/postgres"
)

var ctx = context.Background()

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

func show(t *testing.T, c *pgx.Conn, setting string) string {
	t.Helper()
	var v string
	if err := c.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", setting, err)
	}
	return v
}

func TestStart(t *testing.T) {
	// Not t.TempDir: its parent is private to root, and the server runs as postgres.
	archive, err := os.MkdirTemp("", "rewind-pg-archive-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(archive) })
	srv := postgres.Start(t, postgres.Options{
		Conf: map[string]string{
			"work_mem":        "'7MB'",
			"archive_mode":    "on",
			"archive_command": "'test ! -f " + archive + "/%f && cp %p " + archive + "/%f'",
		},
		ReplicationUser: true,
	})
	if err := srv.Chown(archive); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv.URL(postgres.DefaultDatabase))
	if got := show(t, c, "fsync"); got != "off" {
		t.Errorf("fsync = %s, want off", got)
	}
	if got := show(t, c, "work_mem"); got != "7MB" {
		t.Errorf("work_mem = %s, want the option's 7MB", got)
	}
	if got := show(t, c, "port"); got != strconv.Itoa(srv.Port) {
		t.Errorf("port = %s, want %d", got, srv.Port)
	}
	var super bool
	if err := c.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Errorf("URL user is not a superuser: %v", err)
	}
	for _, name := range []string{"initdb", "postgres", "pg_basebackup", "psql"} {
		if _, err := os.Stat(srv.Bin(name)); err != nil {
			t.Errorf("Bin(%s): %v", name, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(srv.DataDir, "PG_VERSION")); err != nil || fi.IsDir() {
		t.Errorf("DataDir %s holds no cluster: %v", srv.DataDir, err)
	}

	// A wrong password is refused over TCP: authentication is on.
	bad := strings.Replace(srv.URL("rewind"), srv.Password, "wrong", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Error("connected with a wrong password")
	}

	// WAL archiving works: a switched segment lands in the archive directory.
	if _, err := c.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}
	var archived int64
	if err := c.QueryRow(ctx, "SELECT archived_count FROM pg_stat_archiver").Scan(&archived); err != nil {
		t.Fatal(err)
	}
	// The archiver runs in the background; a base backup below waits for its WAL, which
	// forces the archive to be used, so the count is checked after it.

	// The replication role can take a base backup.
	var out []byte
	dst := filepath.Join(t.TempDir(), "base")
	out, err = exec.Command(srv.Bin("pg_basebackup"), "-d", srv.ReplicationURL(), "-D", dst, "-X", "fetch",
		"--checkpoint=fast", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_basebackup as %s: %v\n%s", srv.ReplicationUser, err, out)
	}
	if _, err := os.Stat(filepath.Join(dst, "PG_VERSION")); err != nil {
		t.Fatalf("base backup incomplete: %v", err)
	}

	// Stop and Restart keep the data.
	c.Close(ctx)
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	srv.Restart(t)
	c2 := connect(t, srv.URL(postgres.DefaultDatabase))
	var x int
	if err := c2.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 1 {
		t.Fatalf("after restart: %v %d", err, x)
	}
	entries, err := os.ReadDir(archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("nothing archived in %s (archived_count was %d); server output:\n%s", archive, archived, srv.Output())
	}

	// CreateDatabase gives a fresh, usable database each time.
	u1, u2 := srv.CreateDatabase(t), srv.CreateDatabase(t)
	if u1 == u2 {
		t.Fatal("CreateDatabase returned the same database twice")
	}
	connect(t, u1)
}
