package postgres

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rewind-dr/rewind/internal/testenv"
)

// StartDataDir starts a server on an existing data directory (a restored backup, say) on
// a free loopback port, with its unix socket in a new temporary directory. password is the
// superuser's password in that cluster (the source server's). conf settings are appended to
// postgresql.conf after the port and socket settings. When running as root the data
// directory is given to the postgres user first. The server is stopped when the test ends;
// the data directory is left to the caller.
func StartDataDir(t testing.TB, dataDir, password string, conf map[string]string) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	dir, err := os.MkdirTemp("", "rewind-pg-run-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{bin: bin, t: t, Password: password, Dir: dir, DataDir: dataDir, SocketDir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("postgres: running as root needs the user postgres: %v; %s", err, installHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := s.Chown(dir); err != nil {
			t.Fatal(err)
		}
		if err := s.Chown(dataDir); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("postgres: stop: %v", err)
		}
		os.RemoveAll(dir)
	})
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for attempt := 0; ; attempt++ {
		s.Port, err = testenv.FreePort()
		if err == nil {
			var b strings.Builder
			fmt.Fprintf(&b, "\n# Added by Rewind's test server.\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = %s\n", s.Port, quote(dir))
			for _, k := range keys {
				fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
			}
			err = appendFile(filepath.Join(dataDir, "postgresql.conf"), b.String())
		}
		if err == nil {
			err = s.start()
		}
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return s
}

func appendFile(p, text string) error {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
