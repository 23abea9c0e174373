package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/events/intake"
	"github.com/rewind-dr/rewind/internal/events/rules"
	"github.com/rewind-dr/rewind/internal/monitor"
	"github.com/rewind-dr/rewind/internal/plan"
)

// MaxFileSize is the largest config file Parse accepts.
const MaxFileSize = 4 << 20 // bytes

// Config is a validated rewind.yaml. Map keys are the names given in the file; each
// value repeats its name.
type Config struct {
	Sites     map[string]Site
	Vaults    map[string]Vault
	Resources map[string]Resource
	Plans     map[string]Plan
	Auth      Auth
	Server    Server

	// Events is the events block; Rules, Intake, Monitors and Alarms are their sections by
	// name, validated (events.go); a map is nil when the file has no such section.
	Events   Events
	Rules    map[string]rules.RuleSpec
	Intake   map[string]intake.Mapping
	Monitors map[string]monitor.Spec
	Alarms   map[string]alarm.Spec
	// Warnings are things that are allowed but probably not meant, such as a plan that
	// selects no resource. The caller should show them.
	Warnings []Problem
}

// Site is a failure domain: a building, region or provider. Copies go between sites.
type Site struct {
	Name string
	// Server is the URL of the Rewind server running at this site, "" for this server.
	Server string
}

// Vault is an encrypted backup repository at one site.
type Vault struct {
	Name string
	Site string
	// URL is an absolute local path or a URL such as s3://host/bucket/prefix.
	URL string
	// PasswordFile holds the vault password. It is an absolute path; the parser never
	// reads it.
	PasswordFile string
	S3           *S3 // nil when the file gives no s3 block
	// ReadOnly vaults are only read by this server: the source of pull copies, with
	// credentials that cannot delete. The server takes no lock in them and never writes,
	// verifies or prunes them; no rule backs up or copies into them.
	ReadOnly bool
}

// S3 holds the references to S3 credentials for a vault. Files are absolute paths,
// never read by the parser; "" means the backend's default credential chain.
type S3 struct {
	AccessKeyFile string
	SecretKeyFile string
	Region        string
}

// Kind is what a Resource is.
type Kind string

// The resource kinds.
const (
	KindFiles    Kind = "files"
	KindPostgres Kind = "postgres"
	KindMySQL    Kind = "mysql"
	KindSQLite   Kind = "sqlite"
	KindRedis    Kind = "redis"
)

// Kinds lists every resource kind, in the order the docs give them.
var Kinds = []Kind{KindFiles, KindPostgres, KindMySQL, KindSQLite, KindRedis}

// Resource is something to protect. Which fields apply depends on Kind: Paths, Excludes
// and OneFileSystem for files; URL for postgres, mysql and redis; Path for sqlite.
type Resource struct {
	Name string
	Kind Kind
	// Host names the agent that runs the backup; "" means the server itself.
	Host          string
	Tags          map[string]string // never nil
	Continuous    bool              // continuous (log-shipping) protection; postgres, mysql, sqlite
	Paths         []string          // files: absolute paths
	Excludes      []string          // files: exclude patterns
	OneFileSystem bool              // files: do not cross file system boundaries
	URL           string            // postgres, mysql, redis: connection URL
	Path          string            // sqlite: absolute path of the database file
}

// Plan applies rules to the resources it selects.
type Plan struct {
	Name   string
	Select Selector
	Rules  []Rule
	// Resources are the names of the resources Select matches, sorted.
	Resources []string
}

// Selector picks resources: those named in Resources, and those whose tags include every
// tag in Tags (when Tags is not empty).
type Selector struct {
	Tags      map[string]string // never nil
	Resources []string
}

// Matches reports whether the selector picks r.
func (s Selector) Matches(r Resource) bool {
	for _, name := range s.Resources {
		if name == r.Name {
			return true
		}
	}
	if len(s.Tags) == 0 {
		return false
	}
	for k, v := range s.Tags {
		if got, ok := r.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Rule is one schedule of a plan: when to back up, into which vault, how long to keep
// the points, and where to copy them.
type Rule struct {
	Name     string
	Schedule plan.Schedule
	// Window is start_window and completion_window; zero fields mean no limit.
	Window plan.Window
	Vault  string
	// Retention is the zero plan.Retention (keep every point) when the rule has none.
	Retention  plan.Retention
	CopyTo     []Copy
	Tags       map[string]string // added to each point beside the resource's tags; never nil
	Continuous bool
	// PullFrom, when set, makes this a pull rule: on its schedule the server copies the
	// selected resources' points that Vault lacks from the vault PullFrom (at another site)
	// into Vault, then applies Retention there. A recovery site's server runs such rules,
	// so the primary never holds credentials that can delete the copies.
	PullFrom string
}

// Copy sends each point of a rule to a vault at another site.
type Copy struct {
	Vault     string
	Retention plan.Retention // zero: keep every copy
}

// Role is what an API token may do.
type Role string

// The roles, from least to most privileged.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
	// RoleAgent may only claim and report the jobs of data hosts (`rewind agent`); it
	// receives vault secrets, so give each agent host its own token.
	RoleAgent Role = "agent"
)

// Auth lists API tokens.
type Auth struct {
	Tokens []Token
}

// Token is an API token whose secret lives in TokenFile (absolute, never read here).
type Token struct {
	Name      string
	Role      Role
	TokenFile string
}

// Server holds the server settings of the file. Empty fields mean "not set": command-line
// flags override them, and the server applies its own defaults.
type Server struct {
	Listen  string // host:port
	DataDir string // absolute path
	Catalog string // absolute path of an SQLite file, or a database URL
}

// Option changes how Parse and Load check a file.
type Option func(*options)

type options struct {
	checkSecrets bool
	stat         func(string) (os.FileInfo, error)
}

// CheckSecretFiles makes Parse and Load check that every password, key and token file
// the config names exists, is a regular file, and is not readable by every user. The
// files' contents are never read.
func CheckSecretFiles() Option {
	return func(o *options) { o.checkSecrets = true }
}

// Load reads and parses the config file at path. See Parse.
func Load(path string, opts ...Option) (*Config, error) {
	const op = "config.Load"
	f, err := os.Open(path)
	if err != nil {
		kind := errs.Invalid
		if errors.Is(err, os.ErrNotExist) {
			kind = errs.NotFound
		}
		return nil, errs.E(op, kind, err).WithHint("pass the config file with --config; see docs/rewind.schema.json for its fields")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, errs.E(op, errs.Invalid, err)
	}
	return Parse(path, data, opts...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses and validates a config file; filename is used in messages only. Every
// problem found is returned at once, as an errs.Invalid wrapping Problems whose message
// lists them one per line ("rewind.yaml:12:19: plans.gold.rules[0].schedule: ...").
func Parse(filename string, data []byte, opts ...Option) (*Config, error) {
	const op = "config.Parse"
	o := options{stat: os.Stat}
	for _, opt := range opts {
		opt(&o)
	}
	fail := func(ps []Problem) error {
		sortProblems(ps)
		return errs.E(op, errs.Invalid, Problems(ps)).
			WithHint("fix each problem listed; docs/rewind.schema.json describes every field")
	}
	if len(data) > MaxFileSize {
		return nil, fail([]Problem{{File: filename, Msg: "file is larger than " + strconv.Itoa(MaxFileSize>>20) + " MiB; this is not a Rewind config"}})
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail([]Problem{{File: filename, Msg: "the file is empty; it needs at least sites and vaults"}})
		}
		p := Problem{File: filename, Msg: err.Error()}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = "YAML syntax: " + m[2]
		}
		return nil, fail([]Problem{p})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p := Problem{File: filename, Line: extra.Line, Msg: "the file holds more than one YAML document; put the whole config in one"}
		if err != nil {
			p.Msg = "after the first YAML document: " + err.Error()
		}
		return nil, fail([]Problem{p})
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, fail([]Problem{{File: filename, Msg: "the file is empty; it needs at least sites and vaults"}})
		}
		root = root.Content[0]
	}

	d := &decoder{file: filename}
	var raw rawFile
	d.decodeStruct(root, "", reflectValue(&raw))
	if d.tooBig {
		return nil, fail(d.problems)
	}
	v := &validator{file: filename, opts: o, problems: d.problems}
	cfg := v.config(&raw)
	if len(v.problems) > 0 {
		return nil, fail(v.problems)
	}
	sortProblems(v.warnings)
	cfg.Warnings = v.warnings
	return cfg, nil
}

// parseDuration is plan.ParseDuration for the validator; it returns the message only.
func parseDuration(s string) (time.Duration, string) {
	d, err := plan.ParseDuration(s)
	if err != nil {
		return 0, cause(err)
	}
	return d, ""
}

// cause returns the message of err without the operation prefix of an *errs.Error.
func cause(err error) string {
	var e *errs.Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err.Error()
	}
	return err.Error()
}
