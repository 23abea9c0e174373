package monitor

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// maxBody bounds how much of an HTTP response body is searched for ExpectBody.
const maxBody = 1 << 20

type httpProber struct {
	h      HTTP
	client *http.Client
}

func newHTTPProber(h HTTP) *httpProber {
	if h.Method == "" {
		h.Method = http.MethodGet
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		// A fresh connection per probe: a kept-alive connection would hide a listener
		// that stopped accepting.
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: h.InsecureSkipVerify},
	}
	c := &http.Client{Transport: tr}
	if h.ExpectStatus >= 300 && h.ExpectStatus < 400 {
		// A redirect is what is expected: look at it rather than following it.
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &httpProber{h: h, client: c}
}

func (p *httpProber) probe(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, p.h.Method, p.h.URL, nil)
	if err != nil {
		return "", err
	}
	for k, v := range p.h.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%s %s: %v", p.h.Method, p.h.URL, err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	want := "2xx"
	if p.h.ExpectStatus != 0 {
		ok, want = resp.StatusCode == p.h.ExpectStatus, strconv.Itoa(p.h.ExpectStatus)
	}
	if !ok {
		return "", fmt.Errorf("HTTP %s from %s, want %s", resp.Status, p.h.URL, want)
	}
	if p.h.ExpectBody != "" {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return "", fmt.Errorf("reading the body of %s: %v", p.h.URL, err)
		}
		if !strings.Contains(string(body), p.h.ExpectBody) {
			return "", fmt.Errorf("HTTP %s from %s: body (%d bytes) does not contain %q", resp.Status, p.h.URL, len(body), p.h.ExpectBody)
		}
	}
	return "HTTP " + resp.Status, nil
}

type tcpProber struct{ addr string }

func (p tcpProber) probe(ctx context.Context) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return "", err
	}
	c.Close()
	return "connected to " + p.addr, nil
}

// dnsType maps a record type name to its code; "" is A.
func dnsType(s string) (uint16, bool) {
	if s == "" {
		return dns.TypeA, true
	}
	t, ok := dns.StringToType[strings.ToUpper(s)]
	return t, ok
}

// dnsServer adds port 53 to a server without one.
func dnsServer(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	if _, ok := dns.IsDomainName(s); ok && !strings.Contains(s, ":") {
		return net.JoinHostPort(s, "53"), nil
	}
	return "", fmt.Errorf("%q is not host or host:port", s)
}

type dnsProber struct {
	server string // "" means /etc/resolv.conf's first nameserver, read at probe time
	name   string
	qtype  uint16
	expect []string
}

func newDNSProber(d DNS) (*dnsProber, error) {
	t, _ := dnsType(d.Type)
	p := &dnsProber{name: dns.Fqdn(d.Name), qtype: t}
	if d.Server != "" {
		s, err := dnsServer(d.Server)
		if err != nil {
			return nil, err
		}
		p.server = s
	}
	for _, e := range d.Expect {
		p.expect = append(p.expect, normalizeDNS(t, e))
	}
	return p, nil
}

// normalizeDNS makes expected and answered values comparable: names are lower case
// with a trailing dot, addresses canonical.
func normalizeDNS(t uint16, v string) string {
	v = strings.TrimSpace(v)
	switch t {
	case dns.TypeA, dns.TypeAAAA:
		if ip := net.ParseIP(v); ip != nil {
			return ip.String()
		}
	case dns.TypeCNAME, dns.TypeNS, dns.TypePTR, dns.TypeDNAME:
		return strings.ToLower(dns.Fqdn(v))
	}
	return v
}

// dnsValue is the comparable value of an answer record.
func dnsValue(rr dns.RR) string {
	switch r := rr.(type) {
	case *dns.A:
		return r.A.String()
	case *dns.AAAA:
		return r.AAAA.String()
	case *dns.CNAME:
		return strings.ToLower(r.Target)
	case *dns.NS:
		return strings.ToLower(r.Ns)
	case *dns.PTR:
		return strings.ToLower(r.Ptr)
	case *dns.DNAME:
		return strings.ToLower(r.Target)
	case *dns.TXT:
		return strings.Join(r.Txt, "")
	case *dns.MX:
		return fmt.Sprintf("%d %s", r.Preference, strings.ToLower(r.Mx))
	case *dns.SRV:
		return fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, strings.ToLower(r.Target))
	}
	// Other types: the record's text after the header.
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

func (p *dnsProber) probe(ctx context.Context) (string, error) {
	server := p.server
	if server == "" {
		conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(conf.Servers) == 0 {
			return "", fmt.Errorf("no dns.server set and no nameserver in /etc/resolv.conf: %v", err)
		}
		server = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	m := new(dns.Msg)
	m.SetQuestion(p.name, p.qtype)
	c := new(dns.Client)
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server)
	}
	qt := dns.TypeToString[p.qtype]
	if err != nil {
		return "", fmt.Errorf("%s %s at %s: %v", qt, p.name, server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return "", fmt.Errorf("%s %s at %s: %s", qt, p.name, server, dns.RcodeToString[r.Rcode])
	}
	got := map[string]bool{}
	var values []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != p.qtype {
			continue
		}
		v := dnsValue(rr)
		if !got[v] {
			got[v] = true
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return "", fmt.Errorf("%s %s at %s: no %s record in the answer", qt, p.name, server, qt)
	}
	var missing []string
	for _, e := range p.expect {
		if !got[e] {
			missing = append(missing, strconv.Quote(e))
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%s %s at %s: answer %q lacks %s", qt, p.name, server, values, strings.Join(missing, ", "))
	}
	return fmt.Sprintf("%s %s: %s", qt, p.name, strings.Join(values, ", ")), nil
}

// redisTarget is a parsed redis:// URL.
type redisTarget struct {
	addr     string
	tls      bool
	user     string
	password string
	db       int
}

func parseRedisURL(raw string) (redisTarget, error) {
	if raw == "" {
		return redisTarget{}, fmt.Errorf("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redisTarget{}, fmt.Errorf("%q: %v", redact(raw), err)
	}
	var t redisTarget
	switch u.Scheme {
	case "redis":
	case "rediss":
		t.tls = true
	default:
		return t, fmt.Errorf("%q: scheme must be redis:// or rediss://", redact(raw))
	}
	if u.Hostname() == "" {
		return t, fmt.Errorf("%q names no host", redact(raw))
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
		if t.password == "" && t.user != "" {
			// redis://password@host is a common shorthand for a password alone.
			t.user, t.password = "", t.user
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return t, fmt.Errorf("%q: database %q is not a number", redact(raw), db)
		}
		t.db = n
	}
	return t, nil
}

type redisProber struct{ t redisTarget }

func newRedisProber(raw string) (redisProber, error) {
	t, err := parseRedisURL(raw)
	return redisProber{t: t}, err
}

func (p redisProber) probe(ctx context.Context) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.t.addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if p.t.tls {
		host, _, _ := net.SplitHostPort(p.t.addr)
		tc := tls.Client(c, &tls.Config{ServerName: host})
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", fmt.Errorf("redis %s: TLS: %v", p.t.addr, err)
		}
		c = tc
	}
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	if p.t.password != "" {
		args := []string{"AUTH", p.t.password}
		if p.t.user != "" {
			args = []string{"AUTH", p.t.user, p.t.password}
		}
		if _, err := respCall(rw, args...); err != nil {
			return "", fmt.Errorf("redis %s: AUTH: %v", p.t.addr, err)
		}
	}
	if p.t.db != 0 {
		if _, err := respCall(rw, "SELECT", strconv.Itoa(p.t.db)); err != nil {
			return "", fmt.Errorf("redis %s: SELECT %d: %v", p.t.addr, p.t.db, err)
		}
	}
	reply, err := respCall(rw, "PING")
	if err != nil {
		return "", fmt.Errorf("redis %s: PING: %v", p.t.addr, err)
	}
	if reply != "PONG" {
		return "", fmt.Errorf("redis %s: PING answered %q, want PONG", p.t.addr, reply)
	}
	return "redis " + p.t.addr + ": PONG", nil
}

// respCall sends a command as a RESP array of bulk strings and reads a simple-string
// reply; an error reply is returned as an error.
func respCall(rw *bufio.ReadWriter, args ...string) (string, error) {
	fmt.Fprintf(rw, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(rw, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := rw.Flush(); err != nil {
		return "", err
	}
	line, err := rw.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
