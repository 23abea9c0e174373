package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// stderrTail is how much of a failed command's standard error its error keeps.
const stderrTail = 2 << 10

// execute runs an exec target: d.Args (the command with its JSONPaths replaced) with the
// payload on standard input, in a small environment (PATH, HOME, LANG and TZ of the
// server, then the target's env, then REWIND_EVENT_ID and REWIND_RULE) so that the
// server's own secrets do not leak into hooks.
func execute(ctx context.Context, d Delivery) error {
	e := d.Target.Exec
	args := d.Args
	if len(args) == 0 {
		args = e.Command
	}
	if len(args) == 0 {
		return errs.Errorf("", errs.Invalid, "exec target has no command")
	}
	timeout := time.Duration(e.Timeout)
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = e.Dir
	cmd.Env = execEnv(e.Env, d)
	cmd.Stdin = bytes.NewReader(d.Payload)
	tail := &tailBuffer{max: stderrTail}
	cmd.Stderr = tail
	cmd.WaitDelay = 5 * time.Second
	killGroup(cmd)
	err := cmd.Run()
	if err == nil {
		return nil
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errs.E("", errs.Unavailable, fmt.Errorf("%s did not finish within %s%s", args[0], timeout, tail.suffix()))
	case errors.As(err, &exitErr):
		return errs.E("", errs.Unavailable, fmt.Errorf("%s failed: %v%s", args[0], exitErr, tail.suffix()))
	case ctx.Err() != nil:
		return errs.E("", errs.Canceled, fmt.Errorf("%s: %w", args[0], ctx.Err()))
	}
	return errs.E("", errs.Invalid, fmt.Errorf("cannot run %s: %w", args[0], err)).
		WithHint("check that the command exists, is executable by the server's user, and that dir exists")
}

func execEnv(extra map[string]string, d Delivery) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return append(env, "REWIND_EVENT_ID="+d.EventID, "REWIND_RULE="+d.Rule)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) suffix() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "?"))
	if s == "" {
		return ""
	}
	return ": stderr: " + s
}
