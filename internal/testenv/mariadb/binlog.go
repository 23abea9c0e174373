package mariadb

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/testenv"
)

// Options configures StartWith. The zero value starts the same server as Start.
type Options struct {
	// LogBin turns the binary log on (files "mysql-bin.NNNNNN" in the data directory,
	// row-based, with CRC32 event checksums), as a source for point-in-time recovery needs.
	LogBin bool
	// ServerID is the server_id (default 1). Give two servers whose binary logs meet (a
	// source and a restore target with LogBin) different ids.
	ServerID int
}

// BinlogBase is the base name of the binary log files of a server started with LogBin.
const BinlogBase = "mysql-bin"

// StartWith starts a server like Start, configured by opts, and registers its shutdown
// with t.Cleanup. Restart of such a server starts it without opts (as Start would); tests
// that restart must use Start.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	if !opts.LogBin && opts.ServerID == 0 {
		return Start(t)
	}
	server, installDB, err := Binaries()
	if err != nil {
		t.Fatalf("mariadb: %v", err)
	}
	s := &Server{server: server, installDB: installDB, Password: testenv.RandomHex(16)}
	if err := s.init(); err != nil {
		if s.Dir != "" {
			os.RemoveAll(s.Dir)
		}
		t.Fatalf("mariadb: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("mariadb: stop: %v", err)
		}
		os.RemoveAll(s.Dir)
	})
	for attempt := 0; ; attempt++ {
		var port int
		port, err = testenv.FreePort()
		if err == nil {
			s.setAddr(port)
			err = s.startWith(opts)
		}
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("mariadb: %v", err)
	}
	if err := s.setup(); err != nil {
		t.Fatalf("mariadb: %v; output:\n%s", err, s.Output())
	}
	return s
}

// startWith is start with the options' server flags instead of --skip-log-bin.
func (s *Server) startWith(opts Options) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	id := opts.ServerID
	if id == 0 {
		id = 1
	}
	args := []string{"--no-defaults",
		"--datadir=" + s.DataDir,
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.Dir, "mariadbd.pid"),
		"--tmpdir=" + filepath.Join(s.Dir, "tmp"),
		"--bind-address=127.0.0.1",
		"--port=" + port,
		"--skip-name-resolve",
		"--server-id=" + strconv.Itoa(id),
		"--innodb-buffer-pool-size=16M",
		"--innodb-flush-log-at-trx-commit=0", // a test server: speed over durability
		"--max-connections=200",
	}
	if opts.LogBin {
		args = append(args, "--log-bin="+BinlogBase, "--binlog-format=ROW", "--binlog-checksum=CRC32")
	} else {
		args = append(args, "--skip-log-bin")
	}
	s.mu.Lock()
	s.out = &testenv.SyncBuffer{}
	s.done = make(chan error, 1)
	s.cmd = s.command(s.server, args...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := s.cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start mariadbd: %w", err)
	}
	s.stopped = false
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	go func() { done <- cmd.Wait() }()
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("mariadbd on %s: %w; output:\n%s", s.Addr, err, s.out.String())
	}
	return nil
}
