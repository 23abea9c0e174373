package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestReintegrationExample runs the shipped re-integration example end to end
// (examples/reintegrate): the shop's files and database are backed up; after a disaster
// the files are restored through the server; the restore's COMPLETED event matches the
// rule, which starts the runbook; the runbook restores the database beside the files,
// starts the example shop on both copies and waits until it is healthy; the shop then
// serves the restored files and the restored orders.
func TestReintegrationExample(t *testing.T) {
	s := newServerEnv(t)
	shopBin := filepath.Join(s.dir, "shop")
	build := exec.Command("go", "build", "-o", shopBin, "../../examples/reintegrate/shop")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example shop: %v\n%s", err, out)
	}
	shopAddr := freeAddr(t)

	files, dbPath := filepath.Join(s.dir, "data/shop-files"), filepath.Join(s.dir, "data/shop.db")
	if err := os.MkdirAll(filepath.Join(files, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	catalogText := "shirt 19.90\nmug 7.50\n"
	writeTestFile(t, filepath.Join(files, "catalog.txt"), catalogText)
	writeTestFile(t, filepath.Join(files, "img/logo.svg"), "<svg/>")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := db.Exec(`INSERT INTO orders (item) VALUES (?)`, fmt.Sprint("order ", i)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	// The shipped config and runbook, with this test's paths, vault, shop binary and port.
	cfg, err := os.ReadFile("../../examples/reintegrate/rewind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, s.cfg, strings.NewReplacer(
		"/srv/vaults/main", filepath.Join(s.dir, "vaults/main"),
		"/etc/rewind/main.key", filepath.Join(s.dir, "keys/main.key"),
		"/srv/shop/files", files,
		"/srv/shop/shop.db", dbPath,
	).Replace(string(cfg)))
	def, err := os.ReadFile("../../examples/reintegrate/runbooks/reintegrate.asl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "runbooks"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(s.dir, "runbooks/reintegrate.asl.yaml"), strings.NewReplacer(
		"/usr/local/bin/rewind-example-shop", shopBin, "127.0.0.1:8081", shopAddr).Replace(string(def)))
	t.Cleanup(func() { killByCmdline(t, shopBin) })

	s.start()
	s.client("jobs", "start", "backup", "--resource", "shop-files")
	s.client("jobs", "start", "backup", "--resource", "shop-db")
	// (The hourly rule's missed run starts too: there may be more than two.)
	s.waitJobs(60*time.Second, "both backups, nothing left running", func(l []jobJSON) bool {
		busy := 0
		for _, k := range []string{"backup", "prune"} {
			busy += countState(l, k, "PENDING") + countState(l, k, "RUNNING")
		}
		return countState(l, "backup", "COMPLETED") >= 2 && busy == 0
	})

	// The disaster: the shop's data is gone.
	if err := os.RemoveAll(files); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dbPath); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(s.dir, "restore/shop-files")
	s.client("restore", "--resource", "shop-files", "--point", "latest", "--target", restored)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + shopAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if code, body := get("/orders"); code == 200 && strings.TrimSpace(body) == `{"orders":7}` {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("the shop never answered on the restored data; executions:\n%s\nserver log:\n%s",
				s.client("executions", "--json"), lastLines(string(b), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := get("/files/catalog.txt"); code != 200 || body != catalogText {
		t.Errorf("restored file through the shop: %d %q", code, body)
	}
	// The runbook that did it succeeded, started by the rule with the restore's event.
	var page struct {
		Items []struct {
			ID      string `json:"id"`
			Runbook string `json:"runbook"`
			Status  string `json:"status"`
		} `json:"items"`
	}
	waitFor(t, 30*time.Second, "the execution to succeed", func() bool {
		if err := json.Unmarshal([]byte(s.client("executions", "--json")), &page); err != nil {
			t.Fatal(err)
		}
		return len(page.Items) == 1 && page.Items[0].Status == "SUCCEEDED"
	})
	if page.Items[0].Runbook != "reintegrate" {
		t.Errorf("executions: %+v", page.Items)
	}
	if got := s.jobs(); countState(got, "restore", "COMPLETED") != 2 {
		t.Errorf("restores: %+v (the files by hand, the database by the runbook)", got)
	}
	s.stop()
}

// killByCmdline kills the processes whose command line starts with prog.
func killByCmdline(t *testing.T, prog string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(b), prog+"\x00") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
