package redis

import (
	"bufio"
	"bytes"
	"context"

	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
)

// target is a parsed redis:// URL.
type target struct {
	addr, user, password string
	display              string // the URL without its password
}

func parseURL(op, raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return target{}, errs.Errorf(op, errs.Invalid, "Redis URL %q is not valid", redact(raw)).WithHint("use redis://[user:password@]host:port")
	}
	if u.Scheme != "redis" {
		return target{}, errs.Errorf(op, errs.Invalid, "Redis URL scheme %q is not supported", u.Scheme).WithHint("use redis://host:port (TLS is not supported)")
	}
	t := target{addr: u.Host}
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	if u.User != nil {
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
		if _, ok := u.User.Password(); !ok {
			// redis://password@host is a common shorthand.
			t.password, t.user = t.user, ""
		}
	}
	t.display = "redis://" + t.addr
	return t, nil
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return "(unparsable)"
}

// conn is a minimal RESP2 client.
type conn struct {
	op string
	c  net.Conn
	r  *bufio.Reader
}

func dial(ctx context.Context, op string, t target) (*conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("connect to %s: %w", t.display, err)).WithHint("check that Redis is running and reachable")
	}
	cn := &conn{op: op, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if t.password != "" {
		args := []string{"AUTH", t.password}
		if t.user != "" {
			args = []string{"AUTH", t.user, t.password}
		}
		if _, err := cn.do(ctx, args...); err != nil {
			c.Close()
			return nil, err
		}
	}
	return cn, nil
}

func (c *conn) Close() error { return c.c.Close() }

func (c *conn) deadline(ctx context.Context, d time.Duration) {
	dl := time.Now().Add(d)
	if t, ok := ctx.Deadline(); ok && t.Before(dl) {
		dl = t
	}
	c.c.SetDeadline(dl)
}

func (c *conn) send(args ...string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := c.c.Write(b.Bytes())
	return err
}

func (c *conn) line() (string, error) {
	s, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// do sends a command and reads a simple, integer or bulk reply.
func (c *conn) do(ctx context.Context, args ...string) (string, error) {
	c.deadline(ctx, 30*time.Second)
	if err := c.send(args...); err != nil {
		return "", errs.E(c.op, errs.Unavailable, fmt.Errorf("%s: %w", args[0], err))
	}
	l, err := c.line()
	if err != nil {
		return "", errs.E(c.op, errs.Unavailable, fmt.Errorf("%s: %w", args[0], err))
	}
	return c.reply(args[0], l)
}

func (c *conn) reply(cmd, l string) (string, error) {
	if l == "" {
		return "", errs.Errorf(c.op, errs.Unavailable, "%s: empty reply", cmd)
	}
	switch l[0] {
	case '+', ':':
		return l[1:], nil
	case '-':
		return "", replyError(c.op, cmd, l[1:])
	case '$':
		n, err := strconv.Atoi(l[1:])
		if err != nil || n < -1 || n > 512<<20 {
			return "", errs.Errorf(c.op, errs.Unavailable, "%s: bad bulk length %q", cmd, l)
		}
		if n == -1 {
			return "", nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return "", errs.E(c.op, errs.Unavailable, fmt.Errorf("%s: %w", cmd, err))
		}
		return string(b[:n]), nil
	}
	return "", errs.Errorf(c.op, errs.Unavailable, "%s: unexpected reply %q", cmd, l)
}

func replyError(op, cmd, msg string) error {
	code, _, _ := strings.Cut(msg, " ")
	switch code {
	case "WRONGPASS", "NOAUTH", "NOPERM":
		return errs.Errorf(op, errs.Unauthorized, "%s: %s", cmd, msg).WithHint("check the user and password in the Redis URL; the user needs the sync permission")
	}
	return errs.Errorf(op, errs.Unavailable, "%s: %s", cmd, msg)
}
