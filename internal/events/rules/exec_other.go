//go:build !unix

package rules

import "os/exec"

// killGroup leaves the default cancellation (kill the process) where process groups are
// not available; WaitDelay still bounds the wait for its children's pipes.
func killGroup(*exec.Cmd) {}
