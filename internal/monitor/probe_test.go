package monitor_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/rewind-dr/rewind/internal/monitor"
	"github.com/rewind-dr/rewind/internal/testenv/mariadb"
	"github.com/rewind-dr/rewind/internal/testenv/postgres"
	"github.com/rewind-dr/rewind/internal/testenv/redis"
)

var ctx = context.Background()

func mustNew(t *testing.T, s monitor.Spec) *monitor.Monitor {
	t.Helper()
	if s.Every == 0 {
		s.Every = 10 * time.Second
	}
	if s.Timeout == 0 {
		s.Timeout = 5 * time.Second
	}
	m, err := monitor.New(t.Name(), s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// expect probes m and checks health and that the detail contains want.
func expect(t *testing.T, m *monitor.Monitor, healthy bool, want string) monitor.Sample {
	t.Helper()
	s := m.Probe(ctx)
	if s.Healthy != healthy || !strings.Contains(s.Detail, want) {
		t.Errorf("Probe() = healthy %v detail %q, want healthy %v detail containing %q", s.Healthy, s.Detail, healthy, want)
	}
	if s.Monitor != m.Name() || s.Time.IsZero() || s.Latency < 0 {
		t.Errorf("sample %+v lacks monitor name, time or latency", s)
	}
	return s
}

func TestHTTP(t *testing.T) {
	var mu sync.Mutex
	status, body := http.StatusOK, "all good"
	var gotHeader, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		gotHeader, gotMethod = r.Header.Get("X-Probe"), r.Method
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	set := func(s int, b string) { mu.Lock(); status, body = s, b; mu.Unlock() }

	m := mustNew(t, monitor.Spec{HTTP: &monitor.HTTP{URL: srv.URL + "/health", ExpectBody: "good", Method: "POST", Headers: map[string]string{"X-Probe": "rewind"}}})
	expect(t, m, true, "HTTP 200 OK")
	mu.Lock()
	if gotHeader != "rewind" || gotMethod != "POST" {
		t.Errorf("server saw method %q header %q, want POST and rewind", gotMethod, gotHeader)
	}
	mu.Unlock()
	set(http.StatusServiceUnavailable, "all good")
	expect(t, m, false, "HTTP 503 Service Unavailable from "+srv.URL+"/health, want 2xx")
	set(http.StatusOK, "degraded")
	expect(t, m, false, `does not contain "good"`)

	exact := mustNew(t, monitor.Spec{HTTP: &monitor.HTTP{URL: srv.URL, ExpectStatus: 204}})
	expect(t, exact, false, "want 204")
	set(http.StatusNoContent, "")
	expect(t, exact, true, "HTTP 204")

	srv.Close()
	expect(t, m, false, "connection refused")
}

func TestHTTPRestartedServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	m := mustNew(t, monitor.Spec{HTTP: &monitor.HTTP{URL: "http://" + addr + "/"}})
	expect(t, m, true, "200")
	srv.Close()
	expect(t, m, false, "refused")
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv2 := &httptest.Server{Listener: l2, Config: &http.Server{Handler: h}}
	srv2.Start()
	defer srv2.Close()
	expect(t, m, true, "200")
}

func TestHTTPSInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	expect(t, mustNew(t, monitor.Spec{HTTP: &monitor.HTTP{URL: srv.URL}}), false, "certificate")
	expect(t, mustNew(t, monitor.Spec{HTTP: &monitor.HTTP{URL: srv.URL, InsecureSkipVerify: true}}), true, "200")
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	m := mustNew(t, monitor.Spec{HTTP: &monitor.HTTP{URL: srv.URL}, Every: time.Second, Timeout: 50 * time.Millisecond})
	s := expect(t, m, false, "timed out after 50ms")
	if s.Latency < 50*time.Millisecond {
		t.Errorf("latency %v is shorter than the timeout", s.Latency)
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	m := mustNew(t, monitor.Spec{TCP: &monitor.TCP{Address: addr}})
	expect(t, m, true, "connected to "+addr)
	l.Close()
	expect(t, m, false, "refused")
}

// dnsServer serves a small zone on a loopback UDP port.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	zone := map[uint16]map[string][]string{
		dns.TypeA:     {"shop.test.": {"shop.test. 60 IN A 127.0.0.1", "shop.test. 60 IN A 127.0.0.2"}},
		dns.TypeAAAA:  {"shop.test.": {"shop.test. 60 IN AAAA ::1"}},
		dns.TypeTXT:   {"shop.test.": {`shop.test. 60 IN TXT "v=1" " ok"`}},
		dns.TypeCNAME: {"www.shop.test.": {"www.shop.test. 60 IN CNAME Shop.Test."}},
	}
	mux := dns.NewServeMux()
	mux.HandleFunc("test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		known := false
		for _, names := range zone {
			if _, ok := names[strings.ToLower(q.Name)]; ok {
				known = true
			}
		}
		if !known {
			m.Rcode = dns.RcodeNameError
		}
		for _, s := range zone[q.Qtype][strings.ToLower(q.Name)] {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	server := dnsServer(t)
	tests := []struct {
		name    string
		d       monitor.DNS
		healthy bool
		detail  string
	}{
		{"A", monitor.DNS{Name: "shop.test"}, true, "A shop.test.: 127.0.0.1, 127.0.0.2"},
		{"A expected", monitor.DNS{Name: "shop.test", Expect: []string{"127.0.0.2"}}, true, "127.0.0.2"},
		{"A wrong", monitor.DNS{Name: "shop.test", Expect: []string{"127.0.0.1", "10.0.0.1"}}, false, `lacks "10.0.0.1"`},
		{"AAAA", monitor.DNS{Name: "shop.test", Type: "AAAA", Expect: []string{"0:0::1"}}, true, "::1"},
		{"TXT", monitor.DNS{Name: "shop.test", Type: "txt", Expect: []string{"v=1 ok"}}, true, "v=1 ok"},
		{"CNAME case", monitor.DNS{Name: "www.shop.test", Type: "CNAME", Expect: []string{"shop.test"}}, true, "shop.test."},
		{"no record", monitor.DNS{Name: "www.shop.test", Type: "A"}, false, "no A record"},
		{"NXDOMAIN", monitor.DNS{Name: "gone.test"}, false, "NXDOMAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.Server = server
			expect(t, mustNew(t, monitor.Spec{DNS: &tt.d}), tt.healthy, tt.detail)
		})
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, mustNew(t, monitor.Spec{Command: &monitor.Command{Command: []string{"true"}}}), true, "exit 0")
	expect(t, mustNew(t, monitor.Spec{Command: &monitor.Command{Command: []string{"false"}}}), false, "exit status 1")
	expect(t, mustNew(t, monitor.Spec{Command: &monitor.Command{
		Command: []string{"sh", "-c", `test -f marker && test "$WANT" = yes || { echo "missing $WANT" >&2; exit 3; }`},
		Dir:     dir, Env: map[string]string{"WANT": "yes"},
	}}), true, "exit 0")
	expect(t, mustNew(t, monitor.Spec{Command: &monitor.Command{
		Command: []string{"sh", "-c", `echo "disk full" >&2; exit 3`},
	}}), false, "exit status 3: disk full")
	expect(t, mustNew(t, monitor.Spec{Command: &monitor.Command{Command: []string{"/nonexistent/check"}}}), false, "no such file")
	expect(t, mustNew(t, monitor.Spec{Command: &monitor.Command{Command: []string{"sleep", "10"}}, Every: time.Second, Timeout: 100 * time.Millisecond}), false, "timed out")
}

func TestPostgres(t *testing.T) {
	srv := postgres.Start(t, postgres.Options{})
	url := srv.URL(postgres.DefaultDatabase)
	m := mustNew(t, monitor.Spec{Postgres: &monitor.Postgres{URL: url}})
	expect(t, m, true, "SELECT 1")
	bad := strings.Replace(url, srv.Password, "wrong", 1)
	s := expect(t, mustNew(t, monitor.Spec{Postgres: &monitor.Postgres{URL: bad}}), false, "password authentication failed")
	if strings.Contains(s.Detail, "wrong") {
		t.Errorf("detail %q shows the password", s.Detail)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(t, m, false, "postgres")
}

func TestMySQL(t *testing.T) {
	srv := mariadb.Start(t)
	m := mustNew(t, monitor.Spec{MySQL: &monitor.MySQL{URL: srv.URL + "?timeout=2s"}})
	expect(t, m, true, "SELECT 1")
	bad := strings.Replace(srv.URL, srv.Password, "wrong", 1)
	expect(t, mustNew(t, monitor.Spec{MySQL: &monitor.MySQL{URL: bad}}), false, "Access denied")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(t, m, false, "refused")
}

func TestRedis(t *testing.T) {
	srv := redis.Start(t)
	m := mustNew(t, monitor.Spec{Redis: &monitor.Redis{URL: srv.URL}})
	expect(t, m, true, "PONG")
	expect(t, mustNew(t, monitor.Spec{Redis: &monitor.Redis{URL: srv.URL + "/3"}}), true, "PONG")
	expect(t, mustNew(t, monitor.Spec{Redis: &monitor.Redis{URL: "redis://:wrong@" + srv.Addr}}), false, "AUTH")
	expect(t, mustNew(t, monitor.Spec{Redis: &monitor.Redis{URL: "redis://" + srv.Addr}}), false, "NOAUTH")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(t, m, false, "refused")
	srv.Restart(t)
	expect(t, m, true, "PONG")
}
