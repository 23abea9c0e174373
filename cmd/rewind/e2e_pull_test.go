package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/location"
)

// TestPullCopyFromTheRecoverySite: the primary server holds only its own vault's key; the
// recovery site's server pulls the new points from the primary vault (read-only for it:
// no lock, so it works while the primary holds an exclusive lock) into its own vault on
// its schedule, applies retention there, and the pulled copy restores with the direct
// command line from the offsite vault and its key alone.
func TestPullCopyFromTheRecoverySite(t *testing.T) {
	primary := newServerEnv(t)
	dir := primary.dir
	src := filepath.Join(dir, "data/app")
	makeEveryKind(t, src)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recovery := &serverEnv{t: t, dir: dir, cfg: filepath.Join(dir, "recovery.yaml"), listen: ln.Addr().String(),
		dataDir: filepath.Join(dir, "recovery-server")}
	ln.Close()
	recovery.url = "http://" + recovery.listen

	// The primary knows nothing of the offsite vault: no URL, no key.
	writeConfig(t, primary.cfg, fmt.Sprintf(`sites: {primary: {}, recovery: {server: %[2]s}}
vaults:
  main: {site: primary, url: %[1]s/vaults/main, password_file: %[1]s/keys/main.key}
resources:
  app: {kind: files, paths: [%[1]s/data/app], tags: {tier: gold}}
plans:
  gold:
    select: {tags: {tier: gold}}
    rules:
      - {name: yearly, schedule: "0 0 1 1 *", vault: main, retention: {keep_last: 5}}
`, dir, recovery.url))
	// The recovery server reads the primary vault and writes its own.
	writeConfig(t, recovery.cfg, fmt.Sprintf(`sites: {primary: {server: %[2]s}, recovery: {}}
vaults:
  main:    {site: primary,  url: %[1]s/vaults/main,    password_file: %[1]s/keys/main.key, read_only: true}
  offsite: {site: recovery, url: %[1]s/vaults/offsite, password_file: %[1]s/keys/offsite.key}
resources:
  app: {kind: files, paths: [%[1]s/data/app], tags: {tier: gold}}
plans:
  offsite:
    select: {tags: {tier: gold}}
    rules:
      - {name: pull, schedule: "* * * * *", pull_from: main, vault: offsite, retention: {keep_last: 1}}
`, dir, primary.url))

	primary.start()
	primary.client("jobs", "start", "backup", "--resource", "app")
	primary.waitJobs(60*time.Second, "the first backup", func(l []jobJSON) bool { return countState(l, "backup", "COMPLETED") == 1 })
	if err := os.WriteFile(filepath.Join(src, "late.txt"), []byte("written after the first backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, src)
	primary.client("jobs", "start", "backup", "--resource", "app")
	primary.waitJobs(60*time.Second, "the second backup", func(l []jobJSON) bool { return countState(l, "backup", "COMPLETED") == 2 })
	primary.stop()

	// The primary vault is locked exclusively (as during its owner's prune): a pull takes
	// no lock there, so it still runs.
	ctx := context.Background()
	be, err := location.Open(ctx, filepath.Join(dir, "vaults/main"), location.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	mainRepo, err := vault.Open(ctx, be, "main password", vault.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := mainRepo.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	recovery.start()
	jobs := recovery.waitJobs(90*time.Second, "the scheduled pull and its retention", func(l []jobJSON) bool {
		return countState(l, "copy", "COMPLETED") >= 1 && countState(l, "prune", "COMPLETED") >= 1
	})
	for _, j := range jobs {
		if j.State == "FAILED" {
			t.Errorf("job failed: %+v", j)
		}
	}
	// A backup into the read-only vault is refused, naming the reason.
	r := (&env{t: t, extra: []string{"REWIND_SERVER=" + recovery.url}}).run("jobs", "start", "backup", "--resource", "app", "--vault", "main")
	if r.code == 0 || !strings.Contains(r.stderr, `vault "main" is read_only`) {
		t.Errorf("backup into a read-only vault: exit %d, %s", r.code, r.stderr)
	}
	recovery.stop()
	if err := lock.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	mainRepo.Close()

	// Both points were pulled, then retention kept the newest; the primary site is gone.
	if err := os.RemoveAll(filepath.Join(dir, "vaults/main")); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, vault: filepath.Join(dir, "vaults/offsite"), extra: []string{"REWIND_PASSWORD=offsite password"}}
	var points []struct {
		Resource string `json:"resource"`
	}
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &points); err != nil {
		t.Fatal(err)
	}
	if len(points) != 1 || points[0].Resource != "app" {
		t.Fatalf("offsite points after the pull and keep_last 1: %+v", points)
	}
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "app", "--target", target)
	compareTrees(t, want, snapshot(t, target))
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
