package testenv_test

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/testenv"
)

func TestProcess(t *testing.T) {
	var p testenv.Process
	if err := p.Stop(); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	if err := p.Start(exec.Command("sh", "-c", "echo ready; exec sleep 60")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "ready") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if exited, _ := p.Exited(); exited || !strings.Contains(p.Output(), "ready") {
		t.Fatalf("running process: exited %v, output %q", exited, p.Output())
	}
	if err := p.Stop(testenv.StopStep{Signal: syscall.SIGTERM, Wait: 10 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Fatal("stopped process has not exited")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	// Started again; a process that ignores the first signal is killed in the end.
	if err := p.Start(exec.Command("sh", "-c", "trap '' TERM; echo again; while :; do sleep 1; done")); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.Output(), "again") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stop(testenv.StopStep{Signal: syscall.SIGTERM, Wait: 100 * time.Millisecond}); err == nil {
		t.Fatal("a process that ignored SIGTERM stopped without an error")
	}

	// A process that ended by itself is reported at Stop.
	if err := p.Start(exec.Command("sh", "-c", "exit 3")); err != nil {
		t.Fatal(err)
	}
	for exited, _ := p.Exited(); !exited; exited, _ = p.Exited() {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Fatalf("stop of an exited process: %v", err)
	}
}
