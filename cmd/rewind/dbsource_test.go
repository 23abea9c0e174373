package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/vault"
)

func TestParseSource(t *testing.T) {
	cases := []struct {
		args     []string
		kind     string // "" for files
		resource string
		err      string
	}{
		{args: []string{"/srv/data", "/etc"}},
		{args: []string{"postgres://u:pw@db1:6543/x?sslmode=disable"}, kind: sourcePostgres, resource: "postgres:db1:6543"},
		{args: []string{"postgresql://u@db1/"}, kind: sourcePostgres, resource: "postgres:db1:5432"},
		{args: []string{"sqlite:///srv/app/../app/app.db"}, kind: sourceSQLite, resource: "sqlite:/srv/app/app.db"},
		{args: []string{"redis://:pw@127.0.0.1:7000"}, kind: sourceRedis, resource: "redis:127.0.0.1:7000"},
		{args: []string{"redis://cache"}, kind: sourceRedis, resource: "redis:cache:6379"},
		{args: []string{"sqlite://app.db"}, err: "relative path"},
		{args: []string{"mysql://root:pw@db/shop"}, kind: sourceMySQL, resource: "mysql:db:3306"},
		{args: []string{"MariaDB://u:pw@db2:3307/"}, kind: sourceMySQL, resource: "mysql:db2:3307"},
		{args: []string{"mysql://u:pw@/?socket=/run/mysqld/mysqld.sock"}, kind: sourceMySQL, resource: "mysql:/run/mysqld/mysqld.sock"},
		{args: []string{"mysql://db/"}, err: "names no user"},
		{args: []string{"mysql://:pw@db/"}, err: "names no user"},
		{args: []string{"mysql://u:pw@/"}, err: "names neither a host nor a socket"},
		{args: []string{"mysql://u:pw@/?socket=mysqld.sock"}, err: "is not an absolute path"},
		{args: []string{"mysql://u:pw@db/", "/etc"}, err: "cannot be mixed"},
		{args: []string{"ftp://host/x"}, err: `scheme "ftp://" is not supported`},
		{args: []string{"postgres://u:pw@db1/", "/etc"}, err: "cannot be mixed"},
		{args: []string{"/etc", "redis://db"}, err: "cannot be mixed"},
	}
	for _, tc := range cases {
		src, err := parseSource("backup", tc.args)
		if tc.err != "" {
			if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want Invalid containing %q", tc.args, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), ":pw@") {
				t.Errorf("%v: message shows the password: %v", tc.args, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if tc.kind == "" {
			if src != nil {
				t.Errorf("%v: got a %s source, want files", tc.args, src.kind)
			}
			continue
		}
		if src == nil || src.kind != tc.kind || src.defaultResource() != tc.resource {
			t.Errorf("%v: got %+v, want %s with resource %s", tc.args, src, tc.kind, tc.resource)
			continue
		}
		if strings.Contains(src.display, "pw") {
			t.Errorf("%v: display %q shows the password", tc.args, src.display)
		}
	}
}

func TestRedactAndScrub(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db":          "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db?password=s3cret":      "postgres://u@h/db?password=xxxxx",
		"redis://s3cret@h:6379":                  "redis://xxxxx@h:6379",
		"redis://default:s3cret@h:6379":          "redis://default:xxxxx@h:6379",
		"postgres://h/db":                        "postgres://h/db",
		"mysql://backup:s3cret@db2:3306/":        "mysql://backup:xxxxx@db2:3306/",
		"mariadb://root@/?socket=/run/m.sock":    "mariadb://root@/?socket=/run/m.sock",
		"postgres://u:s3%40cret@h:5432/?x=1&y=2": "postgres://u:xxxxx@h:5432/?x=1&y=2",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	src, err := parseSource("backup", []string{"postgres://u:s3%40cret@h/"})
	if err != nil {
		t.Fatal(err)
	}
	leak := errs.Errorf("x", errs.Unavailable, "connect u:s3@cret and s3%%40cret").WithHint("password s3@cret")
	got := src.scrub(leak)
	if strings.Contains(got.Error(), "s3") || strings.Contains(errs.HintOf(got), "s3") || !errs.Is(got, errs.Unavailable) {
		t.Errorf("scrub: %v (hint %q, kind %v)", got, errs.HintOf(got), errs.KindOf(got))
	}
	if src.scrub(nil) != nil {
		t.Error("scrub(nil) is not nil")
	}
}

func TestMySQLTargets(t *testing.T) {
	for in, want := range map[string]bool{
		"mysql://u:pw@h/": true, "MARIADB://u@h/": true, "/srv/restore": false, "mysqlx://h/": false, "postgres://h/": false,
	} {
		if got := isMySQLURL(in); got != want {
			t.Errorf("isMySQLURL(%q) = %v", in, got)
		}
	}
	at := time.Date(2026, 11, 25, 10, 41, 7, 250e6, time.UTC)
	cases := []struct {
		p        *vault.Point
		file     string
		pos      uint64
		describe string
	}{
		{&vault.Point{Kind: mysql.KindDump, Meta: map[string]string{mysql.MetaBinlogFile: "mysql-bin.000003", mysql.MetaBinlogPos: "1337"}},
			"mysql-bin.000003", 1337, "binlog position mysql-bin.000003:1337 (exclusive)"},
		{&vault.Point{Kind: mysql.KindPhysical, Meta: map[string]string{mysql.MetaBinlogFile: "mysql-bin.000001", mysql.MetaBinlogPos: "4"}},
			"mysql-bin.000001", 4, "binlog position mysql-bin.000001:4 (exclusive)"},
		{&vault.Point{Kind: mysql.KindBinlog, Meta: map[string]string{mysql.MetaBinlogFile: "mysql-bin.000002", mysql.MetaStartPos: "4", mysql.MetaEndPos: "900"}},
			"mysql-bin.000002", 900, "binlog position mysql-bin.000002:900 (exclusive)"},
		{&vault.Point{Kind: mysql.KindDump, Meta: map[string]string{mysql.MetaBinlogFile: "mysql-bin.000003", mysql.MetaBinlogPos: "x"}},
			"", 0, "the end of the stored binlog"},
	}
	for _, c := range cases {
		f, pos := mysqlPointEnd(c.p)
		if f != c.file || pos != c.pos {
			t.Errorf("mysqlPointEnd(%s %v) = %s:%d, want %s:%d", c.p.Kind, c.p.Meta, f, pos, c.file, c.pos)
		}
		if got := describeMySQLTarget(mysql.Target{File: f, Pos: pos}); got != c.describe {
			t.Errorf("describeMySQLTarget(%s:%d) = %q, want %q", f, pos, got, c.describe)
		}
	}
	if got := describeMySQLTarget(mysql.Target{Time: &at}); got != "time 2026-11-25T10:41:07.25Z (inclusive, to the second)" {
		t.Errorf("describeMySQLTarget(time) = %q", got)
	}
}
