//go:build unix

package rules

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd run in its own process group and, on timeout, kills the whole group,
// so that a hook script's children (a sleep, a curl) do not outlive it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
