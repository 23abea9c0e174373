package testenv

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a server process a test runs: its output kept for failure messages, and a
// stop that waits for it. The zero Process is ready to Start; a stopped one may be
// started again. Its methods are safe for concurrent use.
type Process struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan error
	out     *SyncBuffer
	stopped bool
}

// StopStep is one step of a shutdown: send Signal, then wait up to Wait for the exit.
type StopStep struct {
	Signal syscall.Signal
	Wait   time.Duration
}

// Start starts cmd with its standard output and error captured (a new capture each
// start) and watches for its exit.
func (p *Process) Start(cmd *exec.Cmd) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	out, done := &SyncBuffer{}, make(chan error, 1)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.out, p.done, p.stopped = cmd, out, done, false
	go func() { done <- cmd.Wait() }()
	return nil
}

// Exited reports whether the process has ended, and how, without waiting.
func (p *Process) Exited() (bool, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false, nil
	}
	select {
	case err := <-done:
		done <- err
		return true, err
	default:
		return false, nil
	}
}

// Output returns what the process wrote so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// Stop shuts the process down through steps (each a signal and how long to wait for the
// exit), then kills it, and waits for its exit. It returns an error when the process had
// already exited by itself or needed more than the first step. Stopping a process that
// is not running does nothing.
func (p *Process) Stop(steps ...StopStep) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.stopped {
		return nil
	}
	p.stopped = true
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("server had already exited: %v; output:\n%s", err, p.out.String())
	default:
	}
	for i, st := range steps {
		_ = p.cmd.Process.Signal(st.Signal)
		select {
		case err := <-p.done:
			p.done <- err // Exited still reports it
			if i == 0 {
				return nil
			}
			return fmt.Errorf("server ignored %v for %s and needed %v", steps[0].Signal, steps[0].Wait, st.Signal)
		case <-time.After(st.Wait):
		}
	}
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
	return errors.New("server ignored its shutdown signals and was killed")
}
