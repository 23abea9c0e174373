package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/plan"
)

func TestLoadExample(t *testing.T) {
	cfg, err := config.Load("testdata/rewind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := cfg.Plans["gold"].Rules
	if len(rules) != 1 {
		t.Fatalf("plan gold has %d rules, want 1", len(rules))
	}
	if got := rules[0].Schedule.String(); got != "*/5 * * * *" {
		t.Errorf("schedule = %q", got)
	}
	at := time.Date(2026, 11, 24, 13, 2, 0, 0, time.UTC)
	if got := rules[0].Schedule.Next(at); !got.Equal(at.Add(3 * time.Minute)) {
		t.Errorf("schedule.Next(%v) = %v", at, got)
	}
	rules[0].Schedule = plan.Schedule{} // compared above; the rest is compared whole

	want := &config.Config{
		Sites: map[string]config.Site{"primary": {Name: "primary"}, "recovery": {Name: "recovery"}},
		Vaults: map[string]config.Vault{
			"main":    {Name: "main", Site: "primary", URL: "/srv/vaults/main", PasswordFile: "/etc/rewind/main.key"},
			"offsite": {Name: "offsite", Site: "recovery", URL: "/srv/vaults/offsite", PasswordFile: "/etc/rewind/offsite.key"},
		},
		Resources: map[string]config.Resource{
			"app-files": {Name: "app-files", Kind: config.KindFiles, Paths: []string{"/srv/app/data"},
				Tags: map[string]string{"tier": "gold", "app": "shop"}},
		},
		Plans: map[string]config.Plan{
			"gold": {
				Name:   "gold",
				Select: config.Selector{Tags: map[string]string{"tier": "gold"}},
				Rules: []config.Rule{{
					Name:      "frequent",
					Window:    plan.Window{Start: time.Hour, Completion: 8 * time.Hour},
					Vault:     "main",
					Retention: plan.Retention{KeepLast: 12, KeepDaily: 7, DeleteAfter: 35 * plan.Day},
					CopyTo:    []config.Copy{{Vault: "offsite", Retention: plan.Retention{DeleteAfter: 90 * plan.Day}}},
					Tags:      map[string]string{"plan": "gold"},
				}},
				Resources: []string{"app-files"},
			},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parsed config:\n%+v\nwant:\n%+v", cfg, want)
	}
}

func TestLoadFull(t *testing.T) {
	cfg, err := config.Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	nightly := cfg.Plans["gold"].Rules[1]
	if got := nightly.Schedule.String(); got != "CRON_TZ=Europe/Berlin 30 2 * * *" {
		t.Errorf("nightly schedule = %q", got)
	}
	wantRet := plan.Retention{KeepHourly: 24, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12, KeepYearly: 3,
		KeepWithin: 2 * plan.Day, KeepTags: []string{"legal-hold"}}
	if !reflect.DeepEqual(nightly.Retention, wantRet) || !nightly.Continuous {
		t.Errorf("nightly = %+v", nightly)
	}
	if got := cfg.Plans["silver"].Resources; !reflect.DeepEqual(got, []string{"billing-db", "inventory", "sessions"}) {
		t.Errorf("silver selects %v", got)
	}
	if s3 := cfg.Vaults["cloud"].S3; s3 == nil || *s3 != (config.S3{AccessKeyFile: "/etc/rewind/s3.access", SecretKeyFile: "/etc/rewind/s3.secret", Region: "eu-central-1"}) {
		t.Errorf("cloud s3 = %+v", s3)
	}
	files := cfg.Resources["app-files"]
	if files.Host != "web-1" || !files.OneFileSystem || !reflect.DeepEqual(files.Excludes, []string{"*.tmp", "cache/"}) {
		t.Errorf("app-files = %+v", files)
	}
	if got := cfg.Auth.Tokens[1]; got != (config.Token{Name: "ops", Role: config.RoleOperator, TokenFile: "/etc/rewind/tokens/ops"}) {
		t.Errorf("token = %+v", got)
	}
	if cfg.Server != (config.Server{Listen: "127.0.0.1:8420", DataDir: "/var/lib/rewind", Catalog: "/var/lib/rewind/catalog.db"}) {
		t.Errorf("server = %+v", cfg.Server)
	}
	if cfg.Sites["recovery"].Server != "https://dr.example.com:8420" {
		t.Errorf("recovery site = %+v", cfg.Sites["recovery"])
	}
}

// base is a valid config the broken cases below extend; its lines are 1-3.
const base = `sites: {a: {}, b: {}}
vaults: {v: {site: a, url: /v, password_file: /k}, w: {site: b, url: /w, password_file: /k}}
resources: {r: {kind: files, paths: [/data], tags: {tier: gold}}}
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"c.yaml: the file is empty; it needs at least sites and vaults"}},
		{"syntax", "sites: {a: {}\nvaults: [", []string{"c.yaml:1: YAML syntax: did not find expected ',' or '}'"}},
		{"not a mapping", "- a\n- b\n", []string{"c.yaml:1:1: expected a mapping of fields, got a list"}},
		{"two documents", base + "---\nsites: {}\n", []string{"c.yaml:4: the file holds more than one YAML document; put the whole config in one"}},
		{"missing top level", "resources: {}\n", []string{
			`c.yaml:1:1: missing required field "sites"`,
			`c.yaml:1:1: missing required field "vaults"`,
		}},
		{"unknown fields", base + "plan: {}\nsites2: 1\n", []string{
			`c.yaml:4:1: unknown field "plan"; did you mean "plans"?`,
			`c.yaml:5:1: unknown field "sites2"; did you mean "sites"?`,
		}},
		{"unknown field without a close match", base + "colour: red\n", []string{
			`c.yaml:4:1: unknown field "colour"; known fields: sites, vaults, resources, plans, auth, server, events, rules, intake, monitors, alarms`,
		}},
		{"case style", "sites: {a: {}}\nvaults: {v: {site: a, url: /v, passwordFile: /k}}\n", []string{
			`c.yaml:2:13: vaults.v: missing required field "password_file"`,
			`c.yaml:2:32: vaults.v: unknown field "passwordFile"; did you mean "password_file"?`,
		}},
		{"wrong types", base + "plans: {p: {select: {tags: {tier: gold}}, rules: {name: x}}}\nauth: [1]\n", []string{
			`c.yaml:4:50: plans.p.rules: expected a list, got a mapping`,
			`c.yaml:5:7: auth: expected a mapping of fields, got a list`,
		}},
		{"duplicate key", base + "server: {listen: ':1', listen: ':2'}\n", []string{
			`c.yaml:4:24: server: duplicate key "listen" (first at line 4, column 10)`,
		}},
		{"undefined references", base + `plans:
  p:
    select: {resources: [nope]}
    rules:
      - {name: x, schedule: "@daily", vault: nowhere, copy_to: [{vault: gone}]}
`, []string{
			`c.yaml:6:26: plans.p.select.resources[0]: resource "nope" is not defined (defined: r)`,
			`c.yaml:8:46: plans.p.rules[0].vault: vault "nowhere" is not defined (defined: v, w)`,
			`c.yaml:8:73: plans.p.rules[0].copy_to[0].vault: vault "gone" is not defined (defined: v, w)`,
		}},
		{"vault at an undefined site", "sites: {a: {}}\nvaults: {v: {site: c, url: /v, password_file: /k}}\n", []string{
			`c.yaml:2:20: vaults.v.site: site "c" is not defined (defined: a)`,
		}},
		{"copy to the same site", "sites: {a: {}}\nvaults: {v: {site: a, url: /v, password_file: /k}, v2: {site: a, url: /v2, password_file: /k}}\n" +
			"resources: {r: {kind: files, paths: [/d]}}\n" +
			"plans: {p: {select: {resources: [r]}, rules: [{name: x, schedule: '@daily', vault: v, copy_to: [{vault: v2}, {vault: v}]}]}}\n", []string{
			`c.yaml:4:105: plans.p.rules[0].copy_to[0].vault: vault "v2" is at site "a" like the rule's vault "v"; a copy must go to another site (use a second rule to keep two copies at one site)`,
			`c.yaml:4:118: plans.p.rules[0].copy_to[1].vault: copies to vault "v", the rule's own vault; a copy must go to a vault at another site`,
		}},
		{"pull rules", "sites: {a: {}, b: {}}\n" +
			"vaults: {v: {site: a, url: /v, password_file: /k, read_only: true}, v2: {site: a, url: /v2, password_file: /k}, w: {site: b, url: /w, password_file: /k}}\n" +
			"resources: {r: {kind: files, paths: [/d]}}\n" +
			"plans: {p: {select: {resources: [r]}, rules: [\n" +
			"  {name: same, schedule: '@daily', vault: v2, pull_from: v2},\n" +
			"  {name: site, schedule: '@daily', vault: v2, pull_from: v},\n" +
			"  {name: into, schedule: '@daily', vault: v, pull_from: w},\n" +
			"  {name: more, schedule: '@daily', vault: w, pull_from: v, copy_to: [{vault: v2}], continuous: true},\n" +
			"  {name: nope, schedule: '@daily', vault: w, pull_from: x},\n" +
			"  {name: back, schedule: '@daily', vault: w, copy_to: [{vault: v}]}]}}\n", []string{
			`c.yaml:5:58: plans.p.rules[0].pull_from: pulls from vault "v2", the rule's own vault; pull from a vault at another site`,
			`c.yaml:6:58: plans.p.rules[1].pull_from: vault "v" is at site "a" like the rule's vault "v2"; a pull copies between sites`,
			`c.yaml:7:43: plans.p.rules[2].vault: vault "v" is read_only: this server cannot back up or copy into it`,
			`c.yaml:8:3: plans.p.rules[3].copy_to: a pull rule (pull_from) copies into its vault only; copy further with a rule on the server of that site`,
			`c.yaml:8:96: plans.p.rules[3].continuous: a pull rule (pull_from) copies recovery points; it cannot be continuous`,
			`c.yaml:9:57: plans.p.rules[4].pull_from: vault "x" is not defined (defined: v, v2, w)`,
			`c.yaml:10:64: plans.p.rules[5].copy_to[0].vault: vault "v" is read_only: this server cannot copy into it`,
		}},
		{"bad cron, durations and retention", base + `plans:
  p:
    select: {tags: {tier: gold}}
    rules:
      - name: x
        schedule: "0 25 * * *"
        start_window: 60
        completion_window: -1h
        vault: v
        retention: {keep_last: -2, keep_daily: many, keep_within: 3y}
      - name: x
        schedule: "@daily"
        timezone: Mars/Base
        vault: v
        retention: {}
`, []string{
			`c.yaml:9:19: plans.p.rules[0].schedule: schedule "0 25 * * *": hour field "25": end of range (25) above maximum (23)`,
			`c.yaml:10:23: plans.p.rules[0].start_window: duration "60": number 60 has no unit (write it like 1h, 90m, 35d or 2w)`,
			`c.yaml:11:28: plans.p.rules[0].completion_window: duration "-1h" is negative; durations here count time forward (write it like 1h, 90m, 35d or 2w)`,
			`c.yaml:13:32: plans.p.rules[0].retention.keep_last: is -2; counts cannot be negative`,
			`c.yaml:13:48: plans.p.rules[0].retention.keep_daily: expected a whole number, got "many"`,
			`c.yaml:13:67: plans.p.rules[0].retention.keep_within: duration "3y": unknown unit "y" (write it like 1h, 90m, 35d or 2w)`,
			`c.yaml:14:15: plans.p.rules[1].name: duplicate rule name "x" (first at line 8, column 15)`,
			`c.yaml:16:19: plans.p.rules[1].timezone: unknown time zone "Mars/Base"`,
			`c.yaml:18:20: plans.p.rules[1].retention: refusing to remove every point; give at least one keep rule`,
		}},
		{"names, tags and paths", `sites: {"a b": {}, ok: {server: ftp://x}}
vaults: {v: {site: ok, url: vaults/v, password_file: key, s3: {access_key_file: /a}}}
resources:
  r: {kind: files, paths: [data], tags: {"bad key": x, ok: }}
  db: {kind: postgres, url: mysql://x/y, paths: [/x], continuous: yes}
  s: {kind: sqlite, path: db.sqlite}
  k: {kind: redis, url: redis://x, continuous: true}
  q: {kind: fils}
auth: {tokens: [{name: t, role: root, token_file: t.txt}, {name: t, role: admin, token_file: /t}]}
server: {listen: localhost, data_dir: var/rewind, catalog: catalog.db}
`, []string{
			`c.yaml:1:9: sites: site name "a b" is not valid: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`c.yaml:1:33: sites.ok.server: "ftp://x" is not an http:// or https:// URL of a Rewind server`,
			`c.yaml:2:29: vaults.v.url: vault path "vaults/v" is relative; give an absolute path (starting with /)`,
			`c.yaml:2:54: vaults.v.password_file: password file "key" is relative; give an absolute path (starting with /)`,
			`c.yaml:2:63: vaults.v.s3: an s3 block needs an s3:// url, but url is "vaults/v"`,
			`c.yaml:2:63: vaults.v.s3: give both access_key_file and secret_key_file, or neither to use the default credential chain`,
			`c.yaml:4:28: resources.r.paths[0]: path "data" is relative; give an absolute path (starting with /)`,
			`c.yaml:4:42: resources.r.tags: tag key "bad key" is not valid: use 1 to 63 letters, digits, '.', '_', '-' or '/', starting with a letter or digit`,
			`c.yaml:4:56: resources.r.tags.ok: tag has no value; write ok: "" for an empty one`,
			`c.yaml:5:29: resources.db.url: postgres url must start with postgres:// or postgresql://`,
			`c.yaml:5:50: resources.db.paths: is not used by kind postgres (only by files)`,
			`c.yaml:5:67: resources.db.continuous: expected true or false, got "yes"`,
			`c.yaml:6:27: resources.s.path: database path "db.sqlite" is relative; give an absolute path (starting with /)`,
			`c.yaml:7:48: resources.k.continuous: continuous protection is available for postgres, mysql and sqlite resources, not redis`,
			`c.yaml:8:13: resources.q.kind: unknown kind "fils"; did you mean "files"?`,
			`c.yaml:9:33: auth.tokens[0].role: unknown role "root"; use viewer, operator, admin or agent`,
			`c.yaml:9:51: auth.tokens[0].token_file: token file "t.txt" is relative; give an absolute path (starting with /)`,
			`c.yaml:9:66: auth.tokens[1].name: duplicate token name "t" (first at line 9, column 24)`,
			`c.yaml:10:18: server.listen: "localhost" is not host:port (e.g. 127.0.0.1:8420 or :8420)`,
			`c.yaml:10:39: server.data_dir: data directory "var/rewind" is relative; give an absolute path (starting with /)`,
			`c.yaml:10:60: server.catalog: catalog path "catalog.db" is relative; give an absolute path (starting with /)`,
		}},
		{"missing kind fields and empty select", base + `resources:
plans:
  p: {select: {}, rules: []}
  q: {rules: [{schedule: "@daily"}]}
`, []string{
			`c.yaml:4:1: duplicate key "resources" (first at line 3, column 1)`,
			`c.yaml:6:6: plans.p.rules: no rule is defined; a plan needs at least one`,
			`c.yaml:6:15: plans.p.select: select needs tags or resources; a plan never selects everything implicitly`,
			`c.yaml:7:6: plans.q: missing required field "select"`,
			`c.yaml:7:15: plans.q.rules[0]: missing required field "name"`,
			`c.yaml:7:15: plans.q.rules[0]: missing required field "vault"`,
		}},
		{"resource missing kind-specific fields", "sites: {a: {}}\nvaults: {v: {site: a, url: /v, password_file: /k}}\n" +
			"resources: {f: {kind: files}, p: {kind: postgres}, s: {kind: sqlite}}\n", []string{
			`c.yaml:3:16: resources.f: kind files needs paths: a list of absolute paths to back up`,
			`c.yaml:3:34: resources.p: missing required field "url" (the connection URL)`,
			`c.yaml:3:55: resources.s: missing required field "path" (the absolute path of the database file)`,
		}},
		{"anchors and merge keys", "sites: &s {a: {}}\nvaults: {v: {<<: *s, site: a, url: /v, password_file: /k}}\n", []string{
			`c.yaml:2:14: vaults.v: merge keys (<<) are not supported; write the fields out`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			if !errs.Is(err, errs.Invalid) || errs.HintOf(err) == "" {
				t.Errorf("error %v: want errs.Invalid with a hint", err)
			}
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %v does not wrap config.Problems", err)
			}
			got := make([]string, len(ps))
			for i, p := range ps {
				got[i] = p.String()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want)+1 || !strings.HasPrefix(lines[0], "config.Parse: ") {
				t.Errorf("message should list the problems one per line after a heading:\n%s", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`sites: {a: {}}
vaults: {v: {site: a, url: /v, password_file: /k}}
resources: {db: {kind: postgres, url: "postgres://u:secret@db/x"}}
plans: {p: {select: {tags: {tier: silver}}, rules: [{name: x, schedule: "@daily", vault: v}]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		`c.yaml:3:39: resources.db.url: the URL holds a password, which makes this config file a secret; keep it readable only by the rewind user`,
		`c.yaml:4:21: plans.p.select: plan p selects no resource, so it backs up nothing`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckSecretFiles(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private.key")
	public := filepath.Join(dir, "public.key")
	for _, f := range []string{private, public} {
		if err := os.WriteFile(f, []byte("do-not-print-me"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(public, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.key")
	doc := "sites: {a: {}}\nvaults:\n" +
		"  ok: {site: a, url: /v, password_file: " + private + "}\n" +
		"  open: {site: a, url: /v, password_file: " + public + "}\n" +
		"  gone: {site: a, url: /v, password_file: " + missing + "}\n" +
		"  dir: {site: a, url: /v, password_file: " + dir + "}\n"

	if _, err := config.Parse("c.yaml", []byte(doc)); err != nil {
		t.Fatalf("without CheckSecretFiles the files are not looked at: %v", err)
	}
	_, err := config.Parse("c.yaml", []byte(doc), config.CheckSecretFiles())
	if err == nil {
		t.Fatal("CheckSecretFiles accepted a world-readable, a missing and a directory password file")
	}
	msg := err.Error()
	for _, want := range []string{
		"c.yaml:4:43: vaults.open.password_file: password file " + public + " is readable by every user (mode 0644); run: chmod o-rwx " + public,
		"c.yaml:5:43: vaults.gone.password_file: password file " + missing + " does not exist",
		"c.yaml:6:42: vaults.dir.password_file: password file " + dir + " is not a regular file",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "vaults.ok") || strings.Contains(msg, "do-not-print-me") {
		t.Errorf("error mentions the private file or a secret:\n%s", msg)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "rewind.yaml"))
	if !errs.Is(err, errs.NotFound) || errs.HintOf(err) == "" {
		t.Errorf("Load of a missing file = %v, want errs.NotFound with a hint", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// 10 rules x 10 copies x 2000 tags: a 5 KB file that expands to 200,000 nodes.
	tags := strings.Repeat("x, ", 1999) + "x"
	doc := "sites: {a: {}, b: {}}\n" +
		"vaults: {v: {site: a, url: /v, password_file: /k}, w: {site: b, url: /w, password_file: /k}}\n" +
		"resources: {r: {kind: files, paths: [/d]}}\n" +
		"x-copies: &c [" + strings.TrimSuffix(strings.Repeat("{vault: w, retention: {keep_tags: &t ["+tags+"]}}, ", 1), ", ") +
		strings.Repeat(", {vault: w, retention: {keep_tags: *t}}", 9) + "]\n" +
		"plans: {p: {select: {resources: [r]}, rules: [" +
		strings.TrimSuffix(strings.Repeat("{name: n, schedule: '@daily', vault: v, copy_to: *c}, ", 10), ", ") + "]}}\n"
	if len(doc) > 10_000 {
		t.Fatalf("test document is %d bytes; it should be small", len(doc))
	}
	_, err := config.Parse("c.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "more than 100000 YAML nodes") {
		t.Errorf("alias bomb: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/rewind.yaml", "testdata/full.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base + "plans: {p: {select: {tags: {tier: gold}}, rules: [{name: x, schedule: '@every 1h', vault: v}]}}"))
	f.Add([]byte("sites: &a {x: *a}\n"))
	f.Add([]byte("{? [a]: b, <<: {c: d}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("f.yaml", data)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error of kind %v: %v", errs.KindOf(err), err)
			}
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		if cfg == nil || cfg.Sites == nil || cfg.Vaults == nil {
			t.Fatalf("nil config without an error")
		}
	})
}
