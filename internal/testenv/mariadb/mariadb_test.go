package mariadb_test

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rewind-dr/rewind/internal/testenv/mariadb"
)

// dsn turns the server's mysql:// URL into a go-sql-driver DSN.
func dsn(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("URL %q: %v", raw, err)
	}
	c := mysql.NewConfig()
	c.User = u.User.Username()
	c.Passwd, _ = u.User.Password()
	c.Net = "tcp"
	c.Addr = u.Host
	c.DBName = strings.TrimPrefix(u.Path, "/")
	c.Timeout = 5 * time.Second
	return c.FormatDSN()
}

func TestStart(t *testing.T) {
	srv := mariadb.Start(t)
	ctx := context.Background()
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want loopback", srv.Addr)
	}
	if fi, err := os.Stat(srv.Socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("Socket %q is not a socket: %v", srv.Socket, err)
	}
	db, err := sql.Open("mysql", dsn(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var user, database string
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER(), DATABASE()").Scan(&user, &database); err != nil {
		t.Fatalf("query over TCP as %s: %v", mariadb.User, err)
	}
	if user != mariadb.User+"@127.0.0.1" || database != mariadb.DefaultDatabase {
		t.Errorf("connected as %s to %s, want %s@127.0.0.1 to %s", user, database, mariadb.User, mariadb.DefaultDatabase)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatalf("create table: %v", err)
	}

	// A wrong password is refused.
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword(mariadb.User, "wrong")
	bad, err := sql.Open("mysql", dsn(t, u.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.PingContext(ctx); err == nil {
		t.Error("ping with a wrong password succeeded")
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", srv.Addr)
	}
	srv.Restart(t)
	db2, err := sql.Open("mysql", dsn(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var n int
	if err := db2.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("table after Restart: %v", err)
	}
}
