package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serverEnv is a control plane under test: a config with two sites, its vault keys, data,
// and a rewind server process.
type serverEnv struct {
	t       *testing.T
	dir     string
	cfg     string
	url     string
	listen  string
	cmd     *exec.Cmd
	logPath string
	dataDir string // default dir/server
	// extraArgs are added to the server's command line.
	extraArgs []string
}

func newServerEnv(t *testing.T) *serverEnv {
	t.Helper()
	dir := t.TempDir()
	s := &serverEnv{t: t, dir: dir, cfg: filepath.Join(dir, "rewind.yaml")}
	for _, d := range []string{"keys", "vaults", "data/app", "server"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"main", "offsite"} {
		if err := os.WriteFile(filepath.Join(dir, "keys", v+".key"), []byte(v+" password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.listen = ln.Addr().String()
	ln.Close()
	s.url = "http://" + s.listen
	cfg := fmt.Sprintf(`sites: {primary: {}, recovery: {}}
vaults:
  main:    {site: primary,  url: %[1]s/vaults/main,    password_file: %[1]s/keys/main.key}
  offsite: {site: recovery, url: %[1]s/vaults/offsite, password_file: %[1]s/keys/offsite.key}
resources:
  app: {kind: files, paths: [%[1]s/data/app], tags: {tier: gold}}
plans:
  gold:
    select: {tags: {tier: gold}}
    rules:
      - name: yearly
        schedule: "0 0 1 1 *"
        vault: main
        retention: {keep_last: 5}
        copy_to: [{vault: offsite}]
`, dir)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the server and waits until it answers.
func (s *serverEnv) start() {
	s.t.Helper()
	s.logPath = filepath.Join(s.dir, fmt.Sprintf("server-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(s.logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.dataDir == "" {
		s.dataDir = filepath.Join(s.dir, "server")
	}
	args := append([]string{"server", "--config", s.cfg, "--data-dir", s.dataDir, "--listen", s.listen, "--tick", "1s"}, s.extraArgs...)
	s.cmd = exec.Command(rewindBin, args...)
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "REWIND_HOST=testhost"}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { s.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(s.logPath)
	s.t.Fatalf("server did not start:\n%s", b)
}

func (s *serverEnv) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *serverEnv) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b, _ := os.ReadFile(s.logPath)
			s.t.Errorf("server exit: %v\n%s", err, b)
		}
	case <-time.After(60 * time.Second):
		s.t.Error("server did not stop within 60 s of SIGTERM")
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	s.cmd = nil
}

// client runs a client command against the server.
func (s *serverEnv) client(args ...string) string {
	s.t.Helper()
	e := &env{t: s.t, extra: []string{"REWIND_SERVER=" + s.url}}
	return e.must(args...)
}

type jobJSON struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Resource string `json:"resource"`
	Vault    string `json:"vault"`
	PointID  string `json:"pointId"`
	Error    string `json:"error"`
}

func (s *serverEnv) jobs() []jobJSON {
	s.t.Helper()
	out := s.client("jobs", "--json")
	var page struct {
		Items []jobJSON `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		s.t.Fatalf("jobs --json: %v\n%s", err, out)
	}
	return page.Items
}

// waitJobs polls until cond holds for the job list, or fails after timeout.
func (s *serverEnv) waitJobs(timeout time.Duration, what string, cond func([]jobJSON) bool) []jobJSON {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		list := s.jobs()
		if cond(list) {
			return list
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logPath)
			s.t.Fatalf("timed out waiting for %s; jobs: %+v\nserver log:\n%s", what, list, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func countState(list []jobJSON, kind, state string) int {
	n := 0
	for _, j := range list {
		if strings.EqualFold(j.Kind, kind) && j.State == state {
			n++
		}
	}
	return n
}

// TestServerBacksUpCopiesAndTheCopyRestoresAlone: a backup job started through the API
// completes, its copy to the other site follows, and the copy restores with the direct
// command line from the offsite vault and its key alone.
func TestServerBacksUpCopiesAndTheCopyRestoresAlone(t *testing.T) {
	s := newServerEnv(t)
	src := filepath.Join(s.dir, "data/app")
	makeEveryKind(t, src)
	want := snapshot(t, src)
	s.start()
	s.client("jobs", "start", "backup", "--resource", "app")
	s.waitJobs(60*time.Second, "backup and copy COMPLETED", func(l []jobJSON) bool {
		return countState(l, "backup", "COMPLETED") == 1 && countState(l, "copy", "COMPLETED") == 1
	})
	if points := s.pointIDs(); len(points) != 2 {
		t.Errorf("the catalog lists %d points, want the backup and its copy", len(points))
	}
	s.stop()

	// The primary site is gone: only the offsite vault and its key are left.
	if err := os.RemoveAll(filepath.Join(s.dir, "vaults/main")); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, vault: filepath.Join(s.dir, "vaults/offsite"), extra: []string{"REWIND_PASSWORD=offsite password"}}
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "app", "--target", target)
	compareTrees(t, want, snapshot(t, target))
}

// TestServerKilledMidJob: a server killed while a backup runs comes back and ends the job
// (failed, or run again to completion), exactly once.
func TestServerKilledMidJob(t *testing.T) {
	s := newServerEnv(t)
	for i := 0; i < 24; i++ {
		writeRandom(t, filepath.Join(s.dir, "data/app", fmt.Sprintf("f%02d.bin", i)), 8<<20, uint64(i+500))
	}
	s.start()
	s.client("jobs", "start", "backup", "--resource", "app")
	s.waitJobs(30*time.Second, "the backup RUNNING", func(l []jobJSON) bool { return countState(l, "backup", "RUNNING") == 1 })
	s.kill()
	s.start()
	// Every job ends, the copy and retention after the backup too: a check while a prune
	// holds the vault's exclusive lock would find it locked.
	list := s.waitJobs(120*time.Second, "the backup and its follow-ups to end", func(l []jobJSON) bool {
		for _, j := range l {
			if j.State == "RUNNING" || j.State == "PENDING" || j.State == "CREATED" {
				return false
			}
		}
		return true
	})
	backups := 0
	for _, j := range list {
		if strings.EqualFold(j.Kind, "backup") {
			backups++
			if j.State != "COMPLETED" && j.State != "FAILED" {
				t.Errorf("backup job ended %s", j.State)
			}
		}
	}
	if backups != 1 {
		t.Errorf("%d backup jobs after the restart, want the one", backups)
	}
	// The vault holds at most one point of the job, and checks clean.
	e := &env{t: t, vault: filepath.Join(s.dir, "vaults/main"), extra: []string{"REWIND_PASSWORD=main password"}}
	var pts []pointJSON
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &pts); err != nil {
		t.Fatal(err)
	}
	if len(pts) > 1 {
		t.Errorf("the killed job left %d points in the vault, want at most one", len(pts))
	}
	if r := e.run("check"); r.code != 0 {
		t.Errorf("check after the kill: %d\n%s", r.code, r.stdout)
	}
}

// pointIDs lists the IDs of the catalog's points through the server.
func (s *serverEnv) pointIDs() map[string]string {
	s.t.Helper()
	out := s.client("points", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatalf("points --json: %v\n%s", err, out)
	}
	ids := map[string]string{}
	for _, p := range list {
		ids[fmt.Sprint(p["id"])] = fmt.Sprint(p["vault"], " ", p["resource"], " ", p["state"])
	}
	return ids
}

// TestCatalogRebuild: the catalog deleted and rebuilt from the vaults lists the same points.
func TestCatalogRebuild(t *testing.T) {
	s := newServerEnv(t)
	writeRandom(t, filepath.Join(s.dir, "data/app", "f.bin"), 1<<20, 9)
	s.start()
	for i := 0; i < 2; i++ {
		s.client("jobs", "start", "backup", "--resource", "app")
		want := i + 1
		s.waitJobs(60*time.Second, "backups and copies COMPLETED", func(l []jobJSON) bool {
			return countState(l, "backup", "COMPLETED") == want && countState(l, "copy", "COMPLETED") == want
		})
		writeRandom(t, filepath.Join(s.dir, "data/app", "f.bin"), 1<<20, uint64(10+i))
	}
	before := s.pointIDs()
	if len(before) != 4 {
		t.Fatalf("%d points before, want 2 backups and 2 copies: %v", len(before), before)
	}
	s.stop()
	matches, _ := filepath.Glob(filepath.Join(s.dir, "server", "catalog.db*"))
	if len(matches) == 0 {
		t.Fatal("no catalog file to delete")
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t}
	out := e.must("catalog", "rebuild", "--config", s.cfg, "--data-dir", filepath.Join(s.dir, "server"))
	if !strings.Contains(out, "4 points available (4 new") {
		t.Errorf("rebuild: %s", out)
	}
	s.start()
	after := s.pointIDs()
	if len(after) != len(before) {
		t.Fatalf("rebuilt catalog lists %d points, before %d", len(after), len(before))
	}
	for id, desc := range before {
		if after[id] != desc {
			t.Errorf("point %s: before %q, after %q", id, desc, after[id])
		}
	}
}
