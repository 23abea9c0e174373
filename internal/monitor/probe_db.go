package monitor

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

type postgresProber struct{ url string }

func (p postgresProber) probe(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		return "", fmt.Errorf("postgres %s: %v", redact(p.url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return "", fmt.Errorf("postgres %s: SELECT 1: %v", redact(p.url), err)
	}
	return "postgres: SELECT 1", nil
}

// mysqlConfig turns mysql://user:pass@host:port/db?params into a driver configuration.
func mysqlConfig(raw string) (*mysql.Config, error) {
	if err := checkURL(raw, "mysql"); err != nil {
		return nil, err
	}
	u, _ := url.Parse(raw)
	// The driver parses its own parameters (tls, charset, timeouts…).
	c, err := mysql.ParseDSN("/?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%q: parameters: %v", redact(raw), err)
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Passwd, _ = u.User.Password()
	}
	c.Net = "tcp"
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	c.Addr = net.JoinHostPort(u.Hostname(), port)
	c.DBName = strings.TrimPrefix(u.Path, "/")
	return c, nil
}

type mysqlProber struct {
	cfg *mysql.Config
	url string
}

func newMySQLProber(raw string) (*mysqlProber, error) {
	c, err := mysqlConfig(raw)
	if err != nil {
		return nil, err
	}
	return &mysqlProber{cfg: c, url: redact(raw)}, nil
}

func (p *mysqlProber) probe(ctx context.Context) (string, error) {
	connector, err := mysql.NewConnector(p.cfg)
	if err != nil {
		return "", fmt.Errorf("mysql %s: %v", p.url, err)
	}
	// A fresh pool per probe, closed after it: a pooled connection would hide a server
	// that stopped accepting new ones.
	db := sql.OpenDB(connector)
	defer db.Close()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return "", fmt.Errorf("mysql %s: SELECT 1: %v", p.url, err)
	}
	return "mysql: SELECT 1", nil
}

// maxOutput bounds how much of a failed command's output goes into the detail.
const maxOutput = 512

type commandProber struct{ c Command }

func (p commandProber) probe(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, p.c.Command[0], p.c.Command[1:]...)
	cmd.Dir = p.c.Dir
	if len(p.c.Env) > 0 {
		keys := make([]string, 0, len(p.c.Env))
		for k := range p.c.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cmd.Env = os.Environ()
		for _, k := range keys {
			cmd.Env = append(cmd.Env, k+"="+p.c.Env[k])
		}
	}
	// A child that keeps the output pipe open must not hold the probe past its timeout.
	cmd.WaitDelay = 100 * time.Millisecond
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > maxOutput {
			msg = "…" + msg[len(msg)-maxOutput:]
		}
		if msg != "" {
			return "", fmt.Errorf("%s: %v: %s", p.c.Command[0], err, msg)
		}
		return "", fmt.Errorf("%s: %v", p.c.Command[0], err)
	}
	return p.c.Command[0] + ": exit 0", nil
}
