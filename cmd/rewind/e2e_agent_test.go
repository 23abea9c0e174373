package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentRunsTheJobsOfItsHost: a resource on another host is backed up by the agent
// there: the server leaves the job to it, the agent runs it and reports, the copy to the
// other site follows on the server. An agent killed mid-backup has its job taken back after
// the lease, and a new agent runs it to completion; the point restores.
func TestAgentRunsTheJobsOfItsHost(t *testing.T) {
	s := newServerEnv(t)
	src := filepath.Join(s.dir, "data/app")
	makeEveryKind(t, src)
	// Enough data that the backup is still running when the agent is killed.
	big := make([]byte, 192<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, src)
	cfg, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, s.cfg, strings.Replace(string(cfg), "app: {kind: files,", "app: {kind: files, host: agent1,", 1))
	s.extraArgs = []string{"--agent-lease", "2s"}
	s.start()

	// The agent's output goes to a file, read while it runs.
	startAgent := func() (*exec.Cmd, string) {
		log, err := os.CreateTemp(s.dir, "agent-*.log")
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		cmd := exec.Command(rewindBin, "agent", "--server", s.url, "--host", "agent1", "--poll", "100ms")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, log.Name()
	}
	readLog := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}

	// Without an agent the job waits: the server does not run it.
	s.client("jobs", "start", "backup", "--resource", "app")
	time.Sleep(1500 * time.Millisecond)
	if n := countState(s.jobs(), "backup", "PENDING"); n != 1 {
		t.Fatalf("backup of an agent's resource without an agent: %+v", s.jobs())
	}
	agent, _ := startAgent()
	s.waitJobs(60*time.Second, "the agent to start the backup", func(l []jobJSON) bool { return countState(l, "backup", "RUNNING") == 1 })
	agent.Process.Signal(syscall.SIGKILL)
	agent.Wait()
	s.waitJobs(60*time.Second, "the server to take the job back", func(l []jobJSON) bool { return countState(l, "backup", "PENDING") == 1 })

	_, out := startAgent()
	jobs := s.waitJobs(120*time.Second, "backup and copy COMPLETED, nothing left to run", func(l []jobJSON) bool {
		busy := 0
		for _, k := range []string{"backup", "copy", "prune"} {
			busy += countState(l, k, "PENDING") + countState(l, k, "RUNNING")
		}
		return countState(l, "backup", "COMPLETED") == 1 && countState(l, "copy", "COMPLETED") == 1 && busy == 0
	})
	for _, j := range jobs {
		if j.State == "FAILED" {
			t.Errorf("job failed: %+v\nagent:\n%s", j, readLog(out))
		}
	}
	if log := readLog(out); !strings.Contains(log, "done") {
		t.Errorf("agent output:\n%s", log)
	}
	s.stop()
	e := &env{t: t, vault: filepath.Join(s.dir, "vaults/offsite"), extra: []string{"REWIND_PASSWORD=offsite password"}}
	var points []struct {
		Host string `json:"host"`
	}
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &points); err != nil {
		t.Fatal(err)
	}
	if len(points) != 1 || points[0].Host != "agent1" {
		t.Fatalf("offsite points: %+v", points)
	}
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "app", "--target", target)
	compareTrees(t, want, snapshot(t, target))
}
