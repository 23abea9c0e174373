package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/plan"
)

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

var (
	// Names of sites, vaults, resources, plans, rules, tokens and hosts.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// Tag keys: like names, plus '/' for prefixes such as "app.example.com/tier".
	tagKeyRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)
	urlSchemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
)

const (
	nameRule    = "use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"
	tagKeyRule  = "use 1 to 63 letters, digits, '.', '_', '-' or '/', starting with a letter or digit"
	maxTagValue = 256
)

// validator turns the raw file into a Config, collecting problems and warnings.
type validator struct {
	file     string
	opts     options
	problems []Problem
	warnings []Problem
}

func (v *validator) addf(at pos, path, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Line: at.Line, Column: at.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(at pos, path, format string, args ...any) {
	v.warnings = append(v.warnings, Problem{File: v.file, Line: at.Line, Column: at.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// required reports a missing scalar that the decoder could not see as required because
// whether it is needed depends on other fields.
func (v *validator) required(s scalar, at pos, parent, field, why string) bool {
	if s.Set {
		return true
	}
	v.addf(at, parent, "missing required field %q (%s)", field, why)
	return false
}

func (v *validator) boolean(s scalar, path string) bool {
	if !s.Set {
		return false
	}
	if s.Tag != "!!bool" {
		v.addf(s.At, path, "expected true or false, got %q", s.Value)
		return false
	}
	b, err := strconv.ParseBool(strings.ToLower(s.Value))
	if err != nil {
		v.addf(s.At, path, "expected true or false, got %q", s.Value)
	}
	return b
}

func (v *validator) count(s scalar, path string) int {
	if !s.Set {
		return 0
	}
	n, err := strconv.Atoi(s.Value)
	if s.Tag != "!!int" || err != nil {
		v.addf(s.At, path, "expected a whole number, got %q", s.Value)
		return 0
	}
	if n < 0 {
		v.addf(s.At, path, "is %d; counts cannot be negative", n)
		return 0
	}
	return n
}

func (v *validator) duration(s scalar, path string) time.Duration {
	if !s.Set {
		return 0
	}
	d, msg := parseDuration(s.Value)
	if msg != "" {
		v.addf(s.At, path, "%s (write it like 1h, 90m, 35d or 2w)", msg)
	}
	return d
}

func (v *validator) name(at pos, path, kind, name string) {
	if !nameRE.MatchString(name) {
		v.addf(at, path, "%s name %q is not valid: %s", kind, name, nameRule)
	}
}

// absPath checks that a path is absolute.
func (v *validator) absPath(s scalar, path, what string) string {
	if !s.Set {
		return ""
	}
	p := s.Value
	if !filepath.IsAbs(p) {
		v.addf(s.At, path, "%s %q is relative; give an absolute path (starting with /)", what, p)
	}
	return p
}

// secretFile checks a reference to a secret file and, when asked, the file itself.
func (v *validator) secretFile(s scalar, path, what string) string {
	p := v.absPath(s, path, what)
	if p == "" || !filepath.IsAbs(p) || !v.opts.checkSecrets {
		return p
	}
	fi, err := v.opts.stat(p)
	switch {
	case os.IsNotExist(err):
		v.addf(s.At, path, "%s %s does not exist", what, p)
	case err != nil:
		v.addf(s.At, path, "%s %s cannot be checked: %v", what, p, err)
	case !fi.Mode().IsRegular():
		v.addf(s.At, path, "%s %s is not a regular file", what, p)
	case fi.Mode().Perm()&0o004 != 0:
		v.addf(s.At, path, "%s %s is readable by every user (mode %04o); run: chmod o-rwx %s", what, p, fi.Mode().Perm(), p)
	}
	return p
}

func (v *validator) tags(m omap[scalar], path string) map[string]string {
	out := map[string]string{}
	for _, e := range m.Entries {
		p := joinPath(path, e.Key)
		if !tagKeyRE.MatchString(e.Key) {
			v.addf(e.KeyAt, path, "tag key %q is not valid: %s", e.Key, tagKeyRule)
		}
		if !e.Val.Set {
			v.addf(e.KeyAt, p, "tag has no value; write %s: \"\" for an empty one", e.Key)
			continue
		}
		if len(e.Val.Value) > maxTagValue || strings.ContainsFunc(e.Val.Value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			v.addf(e.Val.At, p, "tag value must be at most %d characters without control characters", maxTagValue)
		}
		out[e.Key] = e.Val.Value
	}
	return out
}

func names[T any](m map[string]T) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return "none are defined"
	}
	return "defined: " + strings.Join(keys, ", ")
}

func (v *validator) config(raw *rawFile) *Config {
	cfg := &Config{
		Sites:     map[string]Site{},
		Vaults:    map[string]Vault{},
		Resources: map[string]Resource{},
		Plans:     map[string]Plan{},
	}
	for _, e := range raw.Sites.Entries {
		v.name(e.KeyAt, "sites", "site", e.Key)
		s := Site{Name: e.Key}
		if e.Val.Server.Set {
			s.Server = v.httpURL(e.Val.Server, joinPath("sites."+e.Key, "server"))
		}
		cfg.Sites[e.Key] = s
	}
	if raw.Sites.Set && len(raw.Sites.Entries) == 0 {
		v.addf(raw.Sites.At, "sites", "no site is defined; define at least one, e.g. sites: {primary: {}}")
	}
	for _, e := range raw.Vaults.Entries {
		cfg.Vaults[e.Key] = v.vault(e, cfg)
	}
	if raw.Vaults.Set && len(raw.Vaults.Entries) == 0 {
		v.addf(raw.Vaults.At, "vaults", "no vault is defined; define at least one")
	}
	for _, e := range raw.Resources.Entries {
		cfg.Resources[e.Key] = v.resource(e)
	}
	for _, e := range raw.Plans.Entries {
		cfg.Plans[e.Key] = v.plan(e, cfg)
	}
	if raw.Auth != nil {
		cfg.Auth = v.auth(raw.Auth)
	}
	if raw.Server != nil {
		cfg.Server = v.server(raw.Server)
	}
	v.events(raw, cfg)
	return cfg
}

func (v *validator) httpURL(s scalar, path string) string {
	u, err := url.Parse(s.Value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf(s.At, path, "%q is not an http:// or https:// URL of a Rewind server", s.Value)
	}
	return s.Value
}

func (v *validator) vault(e entry[rawVault], cfg *Config) Vault {
	path := "vaults." + e.Key
	v.name(e.KeyAt, "vaults", "vault", e.Key)
	r := e.Val
	out := Vault{Name: e.Key, Site: r.Site.Value, URL: r.URL.Value}
	if r.Site.Set {
		if _, ok := cfg.Sites[out.Site]; !ok {
			v.addf(r.Site.At, joinPath(path, "site"), "site %q is not defined (%s)", out.Site, names(cfg.Sites))
		}
	}
	scheme := ""
	if r.URL.Set {
		if urlSchemeRE.MatchString(out.URL) {
			u, err := url.Parse(out.URL)
			if err != nil {
				v.addf(r.URL.At, joinPath(path, "url"), "%q is not a valid URL: %v", out.URL, err)
			} else {
				scheme = u.Scheme
			}
		} else {
			v.absPath(r.URL, joinPath(path, "url"), "vault path")
		}
	}
	out.PasswordFile = v.secretFile(r.PasswordFile, joinPath(path, "password_file"), "password file")
	out.ReadOnly = v.boolean(r.ReadOnly, joinPath(path, "read_only"))
	if r.S3 != nil {
		sp := joinPath(path, "s3")
		if r.URL.Set && scheme != "s3" {
			v.addf(r.S3.At, sp, "an s3 block needs an s3:// url, but url is %q", out.URL)
		}
		s3 := &S3{
			AccessKeyFile: v.secretFile(r.S3.AccessKeyFile, joinPath(sp, "access_key_file"), "access key file"),
			SecretKeyFile: v.secretFile(r.S3.SecretKeyFile, joinPath(sp, "secret_key_file"), "secret key file"),
			Region:        r.S3.Region.Value,
		}
		if r.S3.AccessKeyFile.Set != r.S3.SecretKeyFile.Set {
			v.addf(r.S3.At, sp, "give both access_key_file and secret_key_file, or neither to use the default credential chain")
		}
		out.S3 = s3
	}
	return out
}

// kindFields says which kind-specific fields each kind takes; the others are errors.
var kindFields = map[Kind][]string{
	KindFiles:    {"paths", "excludes", "one_file_system"},
	KindPostgres: {"url"},
	KindMySQL:    {"url"},
	KindSQLite:   {"path"},
	KindRedis:    {"url"},
}

var urlSchemes = map[Kind][]string{
	KindPostgres: {"postgres", "postgresql"},
	KindMySQL:    {"mysql"},
	KindRedis:    {"redis", "rediss", "unix"},
}

func (v *validator) resource(e entry[rawResource]) Resource {
	path := "resources." + e.Key
	v.name(e.KeyAt, "resources", "resource", e.Key)
	r := e.Val
	out := Resource{Name: e.Key, Kind: Kind(r.Kind.Value), Host: r.Host.Value, Tags: v.tags(r.Tags, joinPath(path, "tags"))}
	if r.Host.Set {
		v.name(r.Host.At, joinPath(path, "host"), "host", out.Host)
	}
	out.Continuous = v.boolean(r.Continuous, joinPath(path, "continuous"))
	allowed, known := kindFields[out.Kind]
	if r.Kind.Set && !known {
		kinds := make([]string, len(Kinds))
		for i, k := range Kinds {
			kinds[i] = string(k)
		}
		msg := fmt.Sprintf("unknown kind %q; use one of %s", out.Kind, strings.Join(kinds, ", "))
		if s := suggest(string(out.Kind), kinds); s != "" {
			msg = fmt.Sprintf("unknown kind %q; did you mean %q?", out.Kind, s)
		}
		v.addf(r.Kind.At, joinPath(path, "kind"), "%s", msg)
		return out
	}
	if !r.Kind.Set {
		return out
	}
	present := map[string]pos{}
	if r.Paths != nil {
		present["paths"] = r.At
		if len(r.Paths) > 0 {
			present["paths"] = r.Paths[0].At
		}
	}
	if r.Excludes != nil {
		present["excludes"] = r.At
		if len(r.Excludes) > 0 {
			present["excludes"] = r.Excludes[0].At
		}
	}
	for name, s := range map[string]scalar{"one_file_system": r.OneFileSystem, "url": r.URL, "path": r.Path} {
		if s.Set {
			present[name] = s.At
		}
	}
	for _, f := range []string{"paths", "excludes", "one_file_system", "url", "path"} {
		if at, ok := present[f]; ok && !slices.Contains(allowed, f) {
			var users []string
			for _, k := range Kinds {
				if slices.Contains(kindFields[k], f) {
					users = append(users, string(k))
				}
			}
			v.addf(at, joinPath(path, f), "is not used by kind %s (only by %s)", out.Kind, strings.Join(users, ", "))
		}
	}
	switch out.Kind {
	case KindFiles:
		if len(r.Paths) == 0 {
			v.addf(r.At, path, "kind files needs paths: a list of absolute paths to back up")
		}
		for i, p := range r.Paths {
			ip := fmt.Sprintf("%s.paths[%d]", path, i)
			if !p.Set {
				v.addf(r.At, ip, "empty path")
				continue
			}
			out.Paths = append(out.Paths, v.absPath(p, ip, "path"))
		}
		for i, x := range r.Excludes {
			if !x.Set || x.Value == "" {
				v.addf(r.At, fmt.Sprintf("%s.excludes[%d]", path, i), "empty exclude pattern")
				continue
			}
			out.Excludes = append(out.Excludes, x.Value)
		}
		out.OneFileSystem = v.boolean(r.OneFileSystem, joinPath(path, "one_file_system"))
	case KindSQLite:
		if v.required(r.Path, r.At, path, "path", "the absolute path of the database file") {
			out.Path = v.absPath(r.Path, joinPath(path, "path"), "database path")
		}
	default: // postgres, mysql, redis
		if v.required(r.URL, r.At, path, "url", "the connection URL") {
			out.URL = r.URL.Value
			u, err := url.Parse(out.URL)
			schemes := urlSchemes[out.Kind]
			if err != nil || !slices.Contains(schemes, u.Scheme) {
				v.addf(r.URL.At, joinPath(path, "url"), "%s url must start with %s://", out.Kind, strings.Join(schemes, ":// or "))
			} else if _, hasPassword := u.User.Password(); hasPassword {
				v.warnf(r.URL.At, joinPath(path, "url"), "the URL holds a password, which makes this config file a secret; keep it readable only by the rewind user")
			}
		}
	}
	if out.Continuous && (out.Kind == KindFiles || out.Kind == KindRedis) {
		v.addf(r.Continuous.At, joinPath(path, "continuous"), "continuous protection is available for postgres, mysql and sqlite resources, not %s", out.Kind)
	}
	return out
}

func (v *validator) plan(e entry[rawPlan], cfg *Config) Plan {
	path := "plans." + e.Key
	v.name(e.KeyAt, "plans", "plan", e.Key)
	r := e.Val
	out := Plan{Name: e.Key, Select: Selector{Tags: map[string]string{}}}
	if r.Select != nil {
		sp := joinPath(path, "select")
		out.Select.Tags = v.tags(r.Select.Tags, joinPath(sp, "tags"))
		for i, s := range r.Select.Resources {
			ip := fmt.Sprintf("%s.resources[%d]", sp, i)
			if !s.Set {
				v.addf(r.Select.At, ip, "empty resource name")
				continue
			}
			if _, ok := cfg.Resources[s.Value]; !ok {
				v.addf(s.At, ip, "resource %q is not defined (%s)", s.Value, names(cfg.Resources))
			}
			out.Select.Resources = append(out.Select.Resources, s.Value)
		}
		if len(out.Select.Tags) == 0 && len(r.Select.Resources) == 0 {
			v.addf(r.Select.At, sp, "select needs tags or resources; a plan never selects everything implicitly")
		} else {
			for name, res := range cfg.Resources {
				if out.Select.Matches(res) {
					out.Resources = append(out.Resources, name)
				}
			}
			slices.Sort(out.Resources)
			if len(out.Resources) == 0 {
				v.warnf(r.Select.At, sp, "plan %s selects no resource, so it backs up nothing", e.Key)
			}
		}
	}
	if r.Rules != nil && len(r.Rules) == 0 {
		v.addf(r.At, joinPath(path, "rules"), "no rule is defined; a plan needs at least one")
	}
	firstRule := map[string]pos{}
	for i, rr := range r.Rules {
		rp := fmt.Sprintf("%s.rules[%d]", path, i)
		if rr.Name.Set {
			if first, dup := firstRule[rr.Name.Value]; dup {
				v.addf(rr.Name.At, joinPath(rp, "name"), "duplicate rule name %q (first at line %d, column %d)", rr.Name.Value, first.Line, first.Column)
			} else {
				firstRule[rr.Name.Value] = rr.Name.At
			}
		}
		out.Rules = append(out.Rules, v.rule(rr, rp, cfg))
	}
	return out
}

func (v *validator) rule(r rawRule, path string, cfg *Config) Rule {
	out := Rule{Name: r.Name.Value, Vault: r.Vault.Value, Tags: v.tags(r.Tags, joinPath(path, "tags"))}
	if r.Name.Set {
		v.name(r.Name.At, joinPath(path, "name"), "rule", out.Name)
	}
	if r.Schedule.Set {
		s, err := plan.ParseSchedule(r.Schedule.Value, r.Timezone.Value)
		if err != nil {
			at, p := r.Schedule.At, joinPath(path, "schedule")
			if strings.Contains(cause(err), "time zone") && r.Timezone.Set {
				at, p = r.Timezone.At, joinPath(path, "timezone")
			}
			v.addf(at, p, "%s", cause(err))
		}
		out.Schedule = s
	}
	out.Window = plan.Window{
		Start:      v.duration(r.StartWindow, joinPath(path, "start_window")),
		Completion: v.duration(r.CompletionWindow, joinPath(path, "completion_window")),
	}
	out.Continuous = v.boolean(r.Continuous, joinPath(path, "continuous"))
	var site string
	if r.Vault.Set {
		vault, ok := cfg.Vaults[out.Vault]
		switch {
		case !ok:
			v.addf(r.Vault.At, joinPath(path, "vault"), "vault %q is not defined (%s)", out.Vault, names(cfg.Vaults))
		case vault.ReadOnly:
			v.addf(r.Vault.At, joinPath(path, "vault"), "vault %q is read_only: this server cannot back up or copy into it", out.Vault)
		}
		site = vault.Site
	}
	if r.PullFrom.Set {
		out.PullFrom = r.PullFrom.Value
		pp := joinPath(path, "pull_from")
		src, ok := cfg.Vaults[out.PullFrom]
		switch {
		case !ok:
			v.addf(r.PullFrom.At, pp, "vault %q is not defined (%s)", out.PullFrom, names(cfg.Vaults))
		case out.PullFrom == out.Vault:
			v.addf(r.PullFrom.At, pp, "pulls from vault %q, the rule's own vault; pull from a vault at another site", out.PullFrom)
		case site != "" && src.Site == site:
			v.addf(r.PullFrom.At, pp, "vault %q is at site %q like the rule's vault %q; a pull copies between sites", out.PullFrom, site, out.Vault)
		}
		if len(r.CopyTo) > 0 {
			v.addf(r.At, joinPath(path, "copy_to"), "a pull rule (pull_from) copies into its vault only; copy further with a rule on the server of that site")
		}
		if out.Continuous {
			v.addf(r.Continuous.At, joinPath(path, "continuous"), "a pull rule (pull_from) copies recovery points; it cannot be continuous")
		}
	}
	if r.Retention != nil {
		out.Retention = v.retention(r.Retention, joinPath(path, "retention"))
	}
	seen := map[string]bool{}
	for i, c := range r.CopyTo {
		cp := fmt.Sprintf("%s.copy_to[%d]", path, i)
		cc := Copy{Vault: c.Vault.Value}
		if c.Vault.Set {
			vp := joinPath(cp, "vault")
			target, ok := cfg.Vaults[cc.Vault]
			switch {
			case !ok:
				v.addf(c.Vault.At, vp, "vault %q is not defined (%s)", cc.Vault, names(cfg.Vaults))
			case target.ReadOnly:
				v.addf(c.Vault.At, vp, "vault %q is read_only: this server cannot copy into it", cc.Vault)
			case cc.Vault == out.Vault:
				v.addf(c.Vault.At, vp, "copies to vault %q, the rule's own vault; a copy must go to a vault at another site", cc.Vault)
			case site != "" && target.Site == site:
				v.addf(c.Vault.At, vp, "vault %q is at site %q like the rule's vault %q; a copy must go to another site (use a second rule to keep two copies at one site)", cc.Vault, site, out.Vault)
			case seen[cc.Vault]:
				v.addf(c.Vault.At, vp, "copies to vault %q twice", cc.Vault)
			}
			seen[cc.Vault] = true
		}
		if c.Retention != nil {
			cc.Retention = v.retention(c.Retention, joinPath(cp, "retention"))
		}
		out.CopyTo = append(out.CopyTo, cc)
	}
	return out
}

func (v *validator) retention(r *rawRetention, path string) plan.Retention {
	before := len(v.problems)
	out := plan.Retention{
		KeepLast:    v.count(r.KeepLast, joinPath(path, "keep_last")),
		KeepHourly:  v.count(r.KeepHourly, joinPath(path, "keep_hourly")),
		KeepDaily:   v.count(r.KeepDaily, joinPath(path, "keep_daily")),
		KeepWeekly:  v.count(r.KeepWeekly, joinPath(path, "keep_weekly")),
		KeepMonthly: v.count(r.KeepMonthly, joinPath(path, "keep_monthly")),
		KeepYearly:  v.count(r.KeepYearly, joinPath(path, "keep_yearly")),
		KeepWithin:  v.duration(r.KeepWithin, joinPath(path, "keep_within")),
		DeleteAfter: v.duration(r.DeleteAfter, joinPath(path, "delete_after")),
	}
	for i, t := range r.KeepTags {
		if !t.Set {
			v.addf(r.At, fmt.Sprintf("%s.keep_tags[%d]", path, i), "empty tag")
			continue
		}
		out.KeepTags = append(out.KeepTags, t.Value)
	}
	if len(v.problems) == before {
		if err := out.Validate(); err != nil {
			v.addf(r.At, path, "%s", cause(err))
		}
	}
	return out
}

func (v *validator) auth(a *rawAuth) Auth {
	var out Auth
	first := map[string]pos{}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("auth.tokens[%d]", i)
		tok := Token{Name: t.Name.Value, Role: Role(t.Role.Value)}
		if t.Name.Set {
			v.name(t.Name.At, joinPath(p, "name"), "token", tok.Name)
			if at, dup := first[tok.Name]; dup {
				v.addf(t.Name.At, joinPath(p, "name"), "duplicate token name %q (first at line %d, column %d)", tok.Name, at.Line, at.Column)
			} else {
				first[tok.Name] = t.Name.At
			}
		}
		if t.Role.Set {
			switch tok.Role {
			case RoleViewer, RoleOperator, RoleAdmin, RoleAgent:
			default:
				v.addf(t.Role.At, joinPath(p, "role"), "unknown role %q; use viewer, operator, admin or agent", tok.Role)
			}
		}
		tok.TokenFile = v.secretFile(t.TokenFile, joinPath(p, "token_file"), "token file")
		out.Tokens = append(out.Tokens, tok)
	}
	return out
}

func (v *validator) server(s *rawServer) Server {
	out := Server{Listen: s.Listen.Value, Catalog: s.Catalog.Value}
	if s.Listen.Set {
		_, port, err := net.SplitHostPort(out.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			v.addf(s.Listen.At, "server.listen", "%q is not host:port (e.g. 127.0.0.1:8420 or :8420)", out.Listen)
		}
	}
	out.DataDir = v.absPath(s.DataDir, "server.data_dir", "data directory")
	if s.Catalog.Set && !urlSchemeRE.MatchString(out.Catalog) {
		v.absPath(s.Catalog, "server.catalog", "catalog path")
	}
	return out
}
