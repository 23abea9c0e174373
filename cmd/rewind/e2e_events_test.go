package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/events/rules"
)

// hookLog records what the test's webhook receiver got, by path.
type hookLog struct {
	mu   sync.Mutex
	reqs map[string][]hookReq
	// fail says how many first requests of a path answer 500 (-1: all of them).
	fail map[string]int
}

type hookReq struct {
	body   []byte
	header http.Header
	status int
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.reqs[r.URL.Path])
	st := http.StatusOK
	if f := h.fail[r.URL.Path]; f < 0 || n < f {
		st = http.StatusInternalServerError
	}
	h.reqs[r.URL.Path] = append(h.reqs[r.URL.Path], hookReq{body: body, header: r.Header.Clone(), status: st})
	w.WriteHeader(st)
}

func (h *hookLog) get(path string) []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookReq(nil), h.reqs[path]...)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// shopService is an HTTP service the test stops and starts on one address.
type shopService struct {
	addr string
	srv  *http.Server
}

func (s *shopService) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after a stop
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go s.srv.Serve(ln)
}

func (s *shopService) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// startDaemon runs a service binary as the test's own process, failing with how to install
// it when it is missing.
func startDaemon(t *testing.T, bin, pkg string, args ...string) {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s is not installed: run apt-get install %s (scripts/test.sh installs it)", bin, pkg)
	}
	logPath := filepath.Join(t.TempDir(), bin+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", bin, lastLines(string(b), 30))
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServerEventRulesAlarmsAndIntake runs the server with rules, monitors and alarms and
// shows, through the binary and real Prometheus and Alertmanager processes on loopback:
// an alert reaching a signed webhook; retries until a flaky target recovers (delivered
// once) and a dead letter for one that never does; an alarm following an HTTP service
// down and up, with a composite alarm; and the replay of an archived window.
func TestServerEventRulesAlarmsAndIntake(t *testing.T) {
	hooks := &hookLog{reqs: map[string][]hookReq{}, fail: map[string]int{"/flaky": 2, "/broken": -1}}
	hs := httptest.NewServer(hooks)
	defer hs.Close()
	shop := &shopService{addr: freeAddr(t)}
	shop.start(t)
	defer shop.stop()

	s := newServerEnv(t)
	hookSecret, amSecret := "webhook-secret-0123456789", "alertmanager-secret-0123456789"
	writeTestFile(t, filepath.Join(s.dir, "keys", "hook.secret"), hookSecret+"\n")
	writeTestFile(t, filepath.Join(s.dir, "keys", "am.secret"), amSecret+"\n")
	cfg, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, fmt.Sprintf(`
events: {archive: 24h, alertmanager_secret_file: %[1]s/keys/am.secret}
rules:
  alerts:
    pattern: {source: [alertmanager], detail: {status: [firing], alertname: [AlwaysFiring]}}
    targets: [{webhook: {url: "%[2]s/alerts", secret_file: %[1]s/keys/hook.secret}}]
  flaky:
    pattern: {source: [test.app], detail-type: [Flaky]}
    targets: [{webhook: {url: "%[2]s/flaky"}}]
  broken:
    pattern: {source: [test.app], detail-type: [Broken]}
    targets: [{webhook: {url: "%[2]s/broken"}, retry: {max_attempts: 2}}]
  alarm-changes:
    pattern: {source: [rewind.monitor], detail-type: [Alarm State Change]}
    targets: [{webhook: {url: "%[2]s/alarms"}}]
  replayable:
    pattern: {source: [test.app], detail-type: [Replayable]}
    targets:
      - webhook: {url: "%[2]s/replay"}
      - incident: {title: "replayable event from <source>", severity: low}
monitors:
  shop: {http: {url: "http://%[3]s/health", expect_status: 200}, every: 500ms, timeout: 300ms}
alarms:
  shop-down: {monitor: shop, datapoints_to_alarm: 2, evaluation_periods: 3}
  shop-lost: {composite: 'ALARM(shop-down)'}
`, s.dir, hs.URL, shop.addr)...)
	writeTestFile(t, s.cfg, string(cfg))
	s.start()
	defer s.stop()

	// Prometheus fires an alert at once; Alertmanager posts it to Rewind with the secret.
	amAddr, promAddr := freeAddr(t), freeAddr(t)
	amDir, promDir := t.TempDir(), t.TempDir()
	writeTestFile(t, filepath.Join(amDir, "am.yml"), fmt.Sprintf(`route: {receiver: rewind, group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers:
  - name: rewind
    webhook_configs:
      - url: %s/v1/intake/alertmanager
        send_resolved: false
        http_config: {authorization: {credentials: %s}}
`, s.url, amSecret))
	writeTestFile(t, filepath.Join(promDir, "rules.yml"), `groups:
  - name: test
    interval: 1s
    rules:
      - {alert: AlwaysFiring, expr: vector(1) > 0, for: 0s, labels: {severity: page}}
`)
	writeTestFile(t, filepath.Join(promDir, "prometheus.yml"), fmt.Sprintf(`global: {evaluation_interval: 1s, scrape_interval: 1m}
rule_files: [%s/rules.yml]
alerting: {alertmanagers: [{static_configs: [{targets: ["%s"]}]}]}
`, promDir, amAddr))
	startDaemon(t, "prometheus-alertmanager", "prometheus-alertmanager", "--config.file="+filepath.Join(amDir, "am.yml"),
		"--storage.path="+filepath.Join(amDir, "data"), "--web.listen-address="+amAddr, "--cluster.listen-address=")
	startDaemon(t, "prometheus", "prometheus", "--config.file="+filepath.Join(promDir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(promDir, "data"), "--web.listen-address="+promAddr,
		// Alerts fire before the Alertmanager is discovered; resend them every second.
		"--rules.alert.resend-delay=1s")

	// Outside events through PutEvents.
	put := func(detailType string) {
		t.Helper()
		body := fmt.Sprintf(`{"Entries": [{"Source": "test.app", "DetailType": %q, "Detail": "{\"n\": 1}"}]}`, detailType)
		resp, err := http.Post(s.url+"/v1/events", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ FailedEntryCount int }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents %s: %d %v %+v", detailType, resp.StatusCode, err, out)
		}
	}
	put("Flaky")
	put("Broken")
	replayFrom := time.Now().Add(-time.Second)
	put("Replayable")

	t.Run("alertmanager to signed webhook", func(t *testing.T) {
		waitFor(t, 60*time.Second, "the alert's webhook delivery", func() bool { return len(hooks.get("/alerts")) > 0 })
		r := hooks.get("/alerts")[0]
		if err := rules.Verify([]byte(hookSecret), r.header.Get(rules.SignatureHeader), r.body, time.Now(), 0); err != nil {
			t.Fatalf("signature: %v", err)
		}
		var env struct {
			Source string `json:"source"`
			Detail struct {
				AlertName string `json:"alertname"`
			} `json:"detail"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil || env.Source != "alertmanager" || env.Detail.AlertName != "AlwaysFiring" {
			t.Fatalf("delivered event: %v %s", err, r.body)
		}
	})

	t.Run("retries then delivered once", func(t *testing.T) {
		waitFor(t, 30*time.Second, "the flaky target to recover", func() bool {
			for _, r := range hooks.get("/flaky") {
				if r.status == 200 {
					return true
				}
			}
			return false
		})
		time.Sleep(2 * time.Second) // nothing more may arrive
		got := hooks.get("/flaky")
		ok := 0
		for _, r := range got {
			if r.status == 200 {
				ok++
			}
		}
		if len(got) != 3 || ok != 1 {
			t.Fatalf("flaky target: %d requests, %d answered 200; want 3 and 1", len(got), ok)
		}
	})

	t.Run("dead letter", func(t *testing.T) {
		var page struct {
			Items []struct {
				Rule      string `json:"rule"`
				State     string `json:"state"`
				Attempts  int    `json:"attempts"`
				LastError string `json:"lastError"`
			} `json:"items"`
		}
		waitFor(t, 30*time.Second, "a dead letter", func() bool {
			out := s.client("events", "dead-letters", "--json")
			if err := json.Unmarshal([]byte(out), &page); err != nil {
				t.Fatalf("dead-letters --json: %v\n%s", err, out)
			}
			return len(page.Items) > 0
		})
		d := page.Items[0]
		if d.Rule != "broken" || d.State != "DEAD" || d.Attempts != 3 || !strings.Contains(d.LastError, "500") {
			t.Fatalf("dead letter: %+v", d)
		}
		if n := len(hooks.get("/broken")); n != 3 {
			t.Fatalf("broken target got %d requests, want 3 (1 + max_attempts 2)", n)
		}
		if out := s.client("events", "dead-letters"); !strings.Contains(out, "broken") {
			t.Fatalf("dead-letters table:\n%s", out)
		}
	})

	alarmStates := func() map[string]string {
		var list []struct{ Name, State string }
		out := s.client("alarms", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("alarms --json: %v\n%s", err, out)
		}
		m := map[string]string{}
		for _, a := range list {
			m[a.Name] = a.State
		}
		return m
	}
	alarmEvents := func(alarm, state string) int {
		n := 0
		for _, r := range hooks.get("/alarms") {
			var env struct {
				Detail struct {
					AlarmName string `json:"alarmName"`
					State     struct {
						Value string `json:"value"`
					} `json:"state"`
				} `json:"detail"`
			}
			if json.Unmarshal(r.body, &env) == nil && env.Detail.AlarmName == alarm && env.Detail.State.Value == state {
				n++
			}
		}
		return n
	}

	t.Run("alarm follows the service", func(t *testing.T) {
		waitFor(t, 30*time.Second, "shop-down OK", func() bool { return alarmStates()["shop-down"] == "OK" })
		shop.stop()
		waitFor(t, 30*time.Second, "shop-down and shop-lost in ALARM", func() bool {
			st := alarmStates()
			return st["shop-down"] == "ALARM" && st["shop-lost"] == "ALARM"
		})
		waitFor(t, 10*time.Second, "the ALARM events", func() bool {
			return alarmEvents("shop-down", "ALARM") == 1 && alarmEvents("shop-lost", "ALARM") == 1
		})
		shop.start(t)
		waitFor(t, 30*time.Second, "shop-down and shop-lost back to OK", func() bool {
			st := alarmStates()
			return st["shop-down"] == "OK" && st["shop-lost"] == "OK"
		})
		waitFor(t, 10*time.Second, "the OK events", func() bool {
			return alarmEvents("shop-down", "OK") == 2 && alarmEvents("shop-lost", "OK") >= 1
		})
		if out := s.client("alarms"); !strings.Contains(out, "shop-down") || !strings.Contains(out, "OK") {
			t.Fatalf("alarms table:\n%s", out)
		}
	})

	t.Run("replay re-triggers the rule", func(t *testing.T) {
		waitFor(t, 20*time.Second, "the first delivery", func() bool { return len(hooks.get("/replay")) == 1 })
		to := time.Now()
		out := s.client("events", "replay", "--from", replayFrom.UTC().Format(time.RFC3339Nano),
			"--to", to.UTC().Format(time.RFC3339Nano), "--rule", "replayable", "--name", "again", "--json")
		var res struct {
			Name               string
			Events, Deliveries int
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Name != "again" || res.Deliveries != 2 {
			t.Fatalf("replay: %v %s", err, out)
		}
		waitFor(t, 20*time.Second, "the replayed delivery", func() bool { return len(hooks.get("/replay")) == 2 })
		first, again := hooks.get("/replay")[0], hooks.get("/replay")[1]
		var e1, e2 map[string]any
		json.Unmarshal(first.body, &e1)
		json.Unmarshal(again.body, &e2)
		if e1["id"] != e2["id"] || e2[`replay-name`] != "again" || e1["replay-name"] != nil {
			t.Fatalf("first %s\nreplayed %s", first.body, again.body)
		}
		var incs struct {
			Items []struct{ ID, Status, Title string } `json:"items"`
		}
		waitFor(t, 10*time.Second, "two incidents", func() bool {
			json.Unmarshal([]byte(s.client("incidents", "--json")), &incs)
			return len(incs.Items) == 2
		})
		if !strings.Contains(incs.Items[0].Title, "replayable event from test.app") {
			t.Fatalf("incident: %+v", incs.Items[0])
		}
		s.client("incident", "close", incs.Items[0].ID)
		if out := s.client("incidents", "--status", "open", "--json"); strings.Contains(out, incs.Items[0].ID) {
			t.Fatalf("closed incident still open:\n%s", out)
		}
	})
}
