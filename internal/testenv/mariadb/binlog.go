package mariadb

import (
	"os"
	"testing"

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
// with t.Cleanup. Restart keeps opts.
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

// startWith starts the server with the options' server flags (kept for Restart).
func (s *Server) startWith(opts Options) error {
	s.opts = opts
	return s.start()
}
