package main

import (
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
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
		{args: []string{"mysql://root:pw@db/shop"}, err: "MySQL/MariaDB is not supported yet"},
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
