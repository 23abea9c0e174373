package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickstartConfigInProcess runs the server in-process on the quickstart example config
// (its directory moved to a temporary one): the scheduler backs up both resources, copies
// go to the second site, retention runs, and the copies restore with the direct command
// line from the offsite vault and its key alone.
func TestQuickstartConfigInProcess(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile("../../examples/quickstart/rewind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.ReplaceAll(string(example), "/var/tmp/rewind-quickstart", dir)
	cfgPath := filepath.Join(dir, "rewind.yaml")
	for _, d := range []string{"keys", "vaults", "server", "data/app", "data/etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, pw := range map[string]string{"main": "main key", "offsite": "offsite key"} {
		if err := os.WriteFile(filepath.Join(dir, "keys", name+".key"), []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	makeEveryKind(t, filepath.Join(dir, "data/app"))
	if err := os.WriteFile(filepath.Join(dir, "data/etc/shop.conf"), []byte("listen 8081\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, filepath.Join(dir, "data/app"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := openServer(ctx, serverOptions{ConfigPath: cfgPath, Listen: "127.0.0.1:0", Tick: 200 * time.Millisecond, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// The first tick schedules this minute's run of the every-minute rule for both resources.
	url := "http://" + s.Addr()
	deadline := time.Now().Add(90 * time.Second)
	var jobs []jobJSON
	for {
		jobs = fetchJobs(t, url)
		if countState(jobs, "backup", "COMPLETED") >= 2 && countState(jobs, "copy", "COMPLETED") >= 2 && countState(jobs, "prune", "COMPLETED") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduled backups, copies and retention did not complete: %+v", jobs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, j := range jobs {
		if j.State == "FAILED" {
			t.Errorf("job failed: %+v", j)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("server stopped with %v", err)
	}

	// Only the second site's vault and key: the copy restores.
	e := &env{t: t, vault: filepath.Join(dir, "vaults/offsite"), extra: []string{"REWIND_PASSWORD=offsite key"}}
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "app-files", "--target", target)
	compareTrees(t, want, snapshot(t, target))
}

func fetchJobs(t *testing.T, url string) []jobJSON {
	t.Helper()
	resp, err := http.Get(url + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []jobJSON `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}
