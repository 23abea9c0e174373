package monitor

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/rewind-dr/rewind/internal/errs"
)

// Defaults for a Spec's zero durations.
const (
	DefaultEvery   = 30 * time.Second
	DefaultTimeout = 5 * time.Second // capped at half of Every when Every is shorter
)

// Spec describes one monitor: exactly one probe kind and how often to run it.
type Spec struct {
	HTTP     *HTTP     `yaml:"http,omitempty" json:"http,omitempty"`
	TCP      *TCP      `yaml:"tcp,omitempty" json:"tcp,omitempty"`
	DNS      *DNS      `yaml:"dns,omitempty" json:"dns,omitempty"`
	Command  *Command  `yaml:"command,omitempty" json:"command,omitempty"`
	Postgres *Postgres `yaml:"postgres,omitempty" json:"postgres,omitempty"`
	MySQL    *MySQL    `yaml:"mysql,omitempty" json:"mysql,omitempty"`
	Redis    *Redis    `yaml:"redis,omitempty" json:"redis,omitempty"`
	// Every is the interval between probes (DefaultEvery when zero).
	Every time.Duration `yaml:"every,omitempty" json:"every,omitempty"`
	// Timeout bounds one probe (DefaultTimeout, at most Every/2, when zero); it must be
	// shorter than Every.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// HTTP probes a URL: healthy when the status is ExpectStatus (any 2xx when zero) and the
// body contains ExpectBody.
type HTTP struct {
	URL                string            `yaml:"url" json:"url"`
	Method             string            `yaml:"method,omitempty" json:"method,omitempty"` // GET when empty
	ExpectStatus       int               `yaml:"expect_status,omitempty" json:"expect_status,omitempty"`
	ExpectBody         string            `yaml:"expect_body,omitempty" json:"expect_body,omitempty"` // a substring
	Headers            map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	InsecureSkipVerify bool              `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// TCP probes that a TCP connection to Address (host:port) can be opened.
type TCP struct {
	Address string `yaml:"address" json:"address"`
}

// DNS asks Server (host:port, port 53 when omitted; the first nameserver of
// /etc/resolv.conf when empty) for Name's records of Type (A when empty): healthy when the
// answer holds at least one such record and, when Expect is set, every expected value.
type DNS struct {
	Server string   `yaml:"server,omitempty" json:"server,omitempty"`
	Name   string   `yaml:"name" json:"name"`
	Type   string   `yaml:"type,omitempty" json:"type,omitempty"`
	Expect []string `yaml:"expect,omitempty" json:"expect,omitempty"`
}

// Command runs a program (no shell): healthy when it exits 0 within the timeout. Env adds
// to the environment Rewind runs in; Dir is the working directory.
type Command struct {
	Command []string          `yaml:"command" json:"command"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Dir     string            `yaml:"dir,omitempty" json:"dir,omitempty"`
}

// Postgres connects to URL (postgres://…) and runs SELECT 1.
type Postgres struct {
	URL string `yaml:"url" json:"url"`
}

// MySQL connects to URL (mysql://user:pass@host:port/db?param=value, params as in
// go-sql-driver/mysql) and runs SELECT 1.
type MySQL struct {
	URL string `yaml:"url" json:"url"`
}

// Redis connects to URL (redis://[[user]:pass@]host:port[/db], or rediss:// for TLS) and
// sends PING.
type Redis struct {
	URL string `yaml:"url" json:"url"`
}

// kinds returns the names of the probe kinds that are set.
func (s Spec) kinds() []string {
	var k []string
	if s.HTTP != nil {
		k = append(k, "http")
	}
	if s.TCP != nil {
		k = append(k, "tcp")
	}
	if s.DNS != nil {
		k = append(k, "dns")
	}
	if s.Command != nil {
		k = append(k, "command")
	}
	if s.Postgres != nil {
		k = append(k, "postgres")
	}
	if s.MySQL != nil {
		k = append(k, "mysql")
	}
	if s.Redis != nil {
		k = append(k, "redis")
	}
	return k
}

// withDefaults returns s with zero durations replaced by their defaults.
func (s Spec) withDefaults() Spec {
	if s.Every == 0 {
		s.Every = DefaultEvery
	}
	if s.Timeout == 0 {
		s.Timeout = min(DefaultTimeout, s.Every/2)
	}
	return s
}

// Validate reports every problem of s in one errs.Invalid error, or nil.
func (s Spec) Validate() error {
	var p problems
	switch k := s.kinds(); len(k) {
	case 0:
		p.add("no probe: set exactly one of http, tcp, dns, command, postgres, mysql, redis")
	case 1:
	default:
		p.add("%d probes (%s): set exactly one", len(k), strings.Join(k, ", "))
	}
	if s.Every < 0 {
		p.add("every: must be positive, got %v", s.Every)
	}
	if s.Timeout < 0 {
		p.add("timeout: must be positive, got %v", s.Timeout)
	}
	if d := s.withDefaults(); s.Every >= 0 && s.Timeout >= 0 && d.Timeout >= d.Every {
		p.add("timeout: %v must be shorter than every (%v)", d.Timeout, d.Every)
	}
	if h := s.HTTP; h != nil {
		if u, err := url.Parse(h.URL); err != nil {
			p.add("http.url: %v", err)
		} else if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			p.add("http.url: %q is not an http:// or https:// URL with a host", h.URL)
		}
		if h.ExpectStatus != 0 && (h.ExpectStatus < 100 || h.ExpectStatus > 599) {
			p.add("http.expect_status: %d is not an HTTP status (100-599)", h.ExpectStatus)
		}
		if h.Method != "" && strings.ToUpper(h.Method) != h.Method {
			p.add("http.method: %q must be upper case (GET, HEAD, POST…)", h.Method)
		}
	}
	if t := s.TCP; t != nil {
		if _, port, err := net.SplitHostPort(t.Address); err != nil || port == "" {
			p.add("tcp.address: %q is not host:port", t.Address)
		}
	}
	if d := s.DNS; d != nil {
		if d.Name == "" {
			p.add("dns.name: missing")
		} else if _, ok := dns.IsDomainName(d.Name); !ok {
			p.add("dns.name: %q is not a domain name", d.Name)
		}
		if _, ok := dnsType(d.Type); !ok {
			p.add("dns.type: unknown record type %q (A, AAAA, CNAME, TXT, MX, NS, PTR, SRV, SOA, CAA…)", d.Type)
		}
		if d.Server != "" {
			if _, err := dnsServer(d.Server); err != nil {
				p.add("dns.server: %v", err)
			}
		}
	}
	if c := s.Command; c != nil {
		if len(c.Command) == 0 || c.Command[0] == "" {
			p.add("command.command: missing program (a list: [program, arg, …])")
		}
		for k := range c.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				p.add("command.env: %q is not a variable name", k)
			}
		}
	}
	if pg := s.Postgres; pg != nil {
		if err := checkURL(pg.URL, "postgres", "postgresql"); err != nil {
			p.add("postgres.url: %v", err)
		}
	}
	if m := s.MySQL; m != nil {
		if _, err := mysqlConfig(m.URL); err != nil {
			p.add("mysql.url: %v", err)
		}
	}
	if r := s.Redis; r != nil {
		if _, err := parseRedisURL(r.URL); err != nil {
			p.add("redis.url: %v", err)
		}
	}
	return p.err("monitor.Validate")
}

// checkURL checks that raw parses with one of the schemes and names a host.
func checkURL(raw string, schemes ...string) error {
	if raw == "" {
		return fmt.Errorf("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %v", redact(raw), err)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			if u.Host == "" {
				return fmt.Errorf("%q names no host", redact(raw))
			}
			return nil
		}
	}
	return fmt.Errorf("%q: scheme must be %s://", redact(raw), strings.Join(schemes, ":// or "))
}

// redact hides a URL's password for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// problems collects validation failures.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err(op string) error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return errs.Errorf(op, errs.Invalid, "%s", p[0])
	}
	return errs.Errorf(op, errs.Invalid, "%d problems: %s", len(p), strings.Join(p, "; "))
}
