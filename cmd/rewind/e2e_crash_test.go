package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// killAfter starts rewind with args and SIGKILLs it after d (or lets it finish first).
// It returns whether the process was killed.
func (e *env) killAfter(d time.Duration, args ...string) bool {
	e.t.Helper()
	c := e.cmd(args...)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
		return false
	case <-time.After(d):
		c.Process.Signal(syscall.SIGKILL)
		<-done
		return true
	}
}

// indexFiles counts the index files of a local vault, leaving out the temporary files an
// interrupted write leaves behind (they start with a dot).
func indexFiles(t *testing.T, vaultDir string) int {
	entries, err := os.ReadDir(filepath.Join(vaultDir, "index"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// killWhen starts rewind with args and SIGKILLs it as soon as cond holds (polled every
// few milliseconds). It returns whether the process was killed.
func (e *env) killWhen(cond func() bool, args ...string) bool {
	e.t.Helper()
	c := e.cmd(args...)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return false
		case <-tick.C:
			if cond() {
				c.Process.Signal(syscall.SIGKILL)
				<-done
				return true
			}
		}
	}
}

// summaryOf returns the JSON summary line of a backup --json run.
func summaryOf(t *testing.T, out string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message_type"] == "summary" {
			return m
		}
	}
	t.Fatalf("no summary line in:\n%s", out)
	return nil
}

func TestBackupKilledLeavesVaultConsistent(t *testing.T) {
	e := newEnv(t)
	e.must("init")
	first := t.TempDir()
	writeRandom(t, filepath.Join(first, "keep.bin"), 2<<20, 99)
	e.must("backup", "--resource", "first", first)
	firstSnap := snapshot(t, first)

	big := t.TempDir()
	for i := 0; i < 12; i++ {
		writeRandom(t, filepath.Join(big, fmt.Sprintf("f%02d.bin", i)), 8<<20, uint64(i+1))
	}
	// Time a full backup of the same data into a scratch vault, then kill at random moments
	// within that time.
	scratch := newEnv(t)
	scratch.must("init")
	start := time.Now()
	scratch.must("backup", big)
	full := time.Since(start)
	rng := rand.New(rand.NewPCG(1, 2))
	killed := 0
	for round := 0; round < 6; round++ {
		d := time.Duration(float64(full) * (0.1 + 0.6*rng.Float64()))
		if round == 0 {
			// The first kill waits for the backup's first index checkpoint, so the final
			// backup must find something to reuse whatever this machine's speed.
			idx0 := indexFiles(t, e.vault)
			if e.killWhen(func() bool { return indexFiles(t, e.vault) > idx0 }, "backup", "--resource", "big", big) {
				killed++
			}
		} else if e.killAfter(d, "backup", "--resource", "big", big) {
			killed++
		}
		t.Logf("round %d: killed after %v (a full backup takes %v); %d index files", round, d, full, indexFiles(t, e.vault))
		// After every kill the vault opens, checks clean, and the earlier point restores.
		if r := e.run("check"); r.code != 0 {
			t.Fatalf("round %d (killed after %v): check exit %d\n%s%s", round, d, r.code, r.stdout, r.stderr)
		}
		target := t.TempDir()
		e.must("restore", "latest", "--resource", "first", "--target", target)
		compareTrees(t, firstSnap, snapshot(t, target))
	}
	if killed == 0 {
		t.Fatal("no backup was killed; the data set is too small for this machine")
	}
	// The next backup completes and reuses what the killed runs uploaded.
	sum := summaryOf(t, e.must("backup", "--json", "--resource", "big", big))
	added, total := sum["bytes_added"].(float64), sum["bytes_in_tree"].(float64)
	t.Logf("after %d kills the full backup added %.0f of %.0f bytes", killed, added, total)
	if added >= total {
		t.Errorf("the backup after the kills added %.0f bytes of %.0f: nothing uploaded before was reused", added, total)
	}
	target := t.TempDir()
	e.must("restore", "latest", "--resource", "big", "--target", target)
	compareTrees(t, snapshot(t, big), snapshot(t, target))
	if r := e.run("check", "--read-data"); r.code != 0 {
		t.Fatalf("final check: %d\n%s", r.code, r.stdout)
	}
}

func TestPruneKilledLeavesVaultConsistent(t *testing.T) {
	e := newEnv(t)
	e.must("init")
	src := t.TempDir()
	// Ten points of changing data; forget half, then kill prune at random moments.
	for i := 0; i < 10; i++ {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d.bin", i%3)), 3<<20, uint64(100+i))
		e.must("backup", src)
	}
	e.must("forget", "--keep-last", "5")
	var kept []pointJSON
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &kept); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 5; round++ {
		d := time.Duration(20+rng.IntN(400)) * time.Millisecond
		e.killAfter(d, "prune", "--max-unused", "0.01")
		if r := e.run("check"); r.code != 0 {
			t.Fatalf("round %d (killed after %v): check exit %d\n%s%s", round, d, r.code, r.stdout, r.stderr)
		}
	}
	// A prune run to completion converges, and every kept point restores.
	e.must("prune")
	if r := e.run("check", "--read-data"); r.code != 0 {
		t.Fatalf("check after prune: %d\n%s", r.code, r.stdout)
	}
	for _, p := range kept {
		e.must("restore", p.ID, "--target", t.TempDir())
	}
}

func TestBackupAndPruneConcurrently(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{"REWIND_LOCK_WAIT=2m"}
	e.must("init")
	src := t.TempDir()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	// Writer: changes data and backs it up in a loop, recording what each point holds.
	snaps := map[string]map[string]entry{}
	var mu sync.Mutex
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 8; i++ {
			writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d.bin", i%4)), 2<<20, uint64(200+i))
			snap := snapshot(t, src)
			r := e.run("backup", "--json", src)
			if r.code != 0 {
				errc <- fmt.Errorf("backup %d: exit %d: %s", i, r.code, r.stderr)
				return
			}
			id := summaryOf(t, r.stdout)["point"].(string)
			mu.Lock()
			snaps[id] = snap
			mu.Unlock()
		}
	}()
	// Pruner: forgets all but the newest three and prunes, in a loop.
	go func() {
		defer wg.Done()
		for i := 0; i < 8; i++ {
			if r := e.run("forget", "--keep-last", "3", "--prune"); r.code != 0 && !strings.Contains(r.stderr, "no points") {
				if r.code != exitUsage { // an empty vault has nothing to forget yet
					errc <- fmt.Errorf("forget --prune %d: exit %d: %s", i, r.code, r.stderr)
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if r := e.run("check", "--read-data"); r.code != 0 {
		t.Fatalf("check: %d\n%s", r.code, r.stdout)
	}
	var points []pointJSON
	if err := json.Unmarshal([]byte(e.must("points", "--json")), &points); err != nil {
		t.Fatal(err)
	}
	if len(points) < 3 {
		t.Fatalf("%d points left, want at least 3", len(points))
	}
	for _, p := range points {
		target := t.TempDir()
		e.must("restore", p.ID, "--target", target)
		mu.Lock()
		want := snaps[p.ID]
		mu.Unlock()
		compareTrees(t, want, snapshot(t, target))
	}
}

func TestSeveralHostsBackUpAtOnce(t *testing.T) {
	e := newEnv(t)
	e.must("init")
	type host struct {
		name string
		src  string
		snap map[string]entry
		id   string
	}
	var hosts []*host
	for i := 0; i < 3; i++ {
		h := &host{name: fmt.Sprintf("web-%d", i), src: t.TempDir()}
		for j := 0; j < 4; j++ {
			// Half of each host's data is shared with the others, so they dedup against blobs
			// another backup is uploading at the same moment.
			writeRandom(t, filepath.Join(h.src, fmt.Sprintf("own%d.bin", j)), 1<<20, uint64(1000*i+j))
			writeRandom(t, filepath.Join(h.src, fmt.Sprintf("shared%d.bin", j)), 1<<20, uint64(j))
		}
		h.snap = snapshot(t, h.src)
		hosts = append(hosts, h)
	}
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			he := *e
			he.extra = []string{"REWIND_HOST=" + h.name}
			r := he.run("backup", "--json", h.src)
			if r.code != 0 {
				t.Errorf("backup on %s: exit %d: %s", h.name, r.code, r.stderr)
				return
			}
			h.id = summaryOf(t, r.stdout)["point"].(string)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if r := e.run("check", "--read-data"); r.code != 0 {
		t.Fatalf("check: %d\n%s", r.code, r.stdout)
	}
	for _, h := range hosts {
		target := t.TempDir()
		e.must("restore", h.id, "--target", target)
		compareTrees(t, h.snap, snapshot(t, target))
	}
}
