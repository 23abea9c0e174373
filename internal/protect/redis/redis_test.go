package redis_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/redis"
	redistest "github.com/rewind-dr/rewind/internal/testenv/redis"
	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newVault(t testing.TB) redis.Vault {
	t.Helper()
	ctx := context.Background()
	r, err := vault.Init(ctx, mem.New(), "pw", vault.InitOptions{KDF: vault.KDFParams{Time: 1, Memory: 64, Threads: 1}, Runtime: vault.OpenOptions{Host: "test-host"}})
	must(t, err)
	l, err := r.Lock(ctx, false)
	must(t, err)
	t.Cleanup(func() { l.Unlock(context.Background()); r.Close() })
	return redis.FromVault(r)
}

// cli runs redis-cli against addr and returns its trimmed output.
func cli(t testing.TB, addr, password string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	full := []string{"-h", host, "-p", port, "--no-auth-warning"}
	if password != "" {
		full = append(full, "-a", password)
	}
	out, err := exec.Command("redis-cli", append(full, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func fill(t testing.TB, s *redistest.Server) {
	cli(t, s.Addr, s.Password, "SET", "str", "hello world")
	cli(t, s.Addr, s.Password, "RPUSH", "list", "a", "b", "c")
	cli(t, s.Addr, s.Password, "HSET", "hash", "f1", "v1", "f2", "v2")
	cli(t, s.Addr, s.Password, "SADD", "set", "x", "y")
	cli(t, s.Addr, s.Password, "ZADD", "zset", "1", "one", "2", "two")
	cli(t, s.Addr, s.Password, "XADD", "stream", "1-1", "k", "v")
	cli(t, s.Addr, s.Password, "SETRANGE", "big", "1999999", "x") // 2 MB, several chunks
}

// startFrom starts a redis-server (no password) that loads dir/dbfilename.
func startFrom(t *testing.T, dir, file string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--dbfilename", file, "--save", "", "--appendonly", "no", "--daemonize", "no")
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			if out, _ := exec.Command("redis-cli", "-p", strconv.Itoa(port), "PING").Output(); strings.TrimSpace(string(out)) == "PONG" {
				return addr
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not start", addr)
	return ""
}

func TestBackupRestoreServesSameKeys(t *testing.T) {
	for _, diskless := range []bool{false, true} {
		t.Run(fmt.Sprintf("diskless=%v", diskless), func(t *testing.T) {
			ctx := context.Background()
			src := redistest.Start(t)
			fill(t, src)
			v := newVault(t)
			p, err := redis.Backup(ctx, v, src.URL, redis.BackupOptions{Resource: "cache", Diskless: diskless})
			must(t, err)
			if p.Kind != redis.KindRDB || p.Meta[redis.MetaKeys] != "7" || p.Meta[redis.MetaRDBVersion] == "" || p.Meta[redis.MetaRedisVersion] == "" {
				t.Fatalf("point %+v", p.Meta)
			}
			dir := t.TempDir()
			target := filepath.Join(dir, "dump.rdb")
			_, err = redis.Restore(ctx, v, "cache", target, redis.RestoreOptions{})
			must(t, err)
			_, err = redis.Restore(ctx, v, "cache", target, redis.RestoreOptions{})
			if !errs.Is(err, errs.Exists) {
				t.Fatalf("restore over an existing file: %v, want Exists", err)
			}
			addr := startFrom(t, dir, "dump.rdb")
			checks := map[string][]string{
				"hello world":     {"GET", "str"},
				"a\nb\nc":         {"LRANGE", "list", "0", "-1"},
				"v2":              {"HGET", "hash", "f2"},
				"2":               {"SCARD", "set"},
				"two":             {"ZRANGEBYSCORE", "zset", "2", "2"},
				"1":               {"XLEN", "stream"},
				"7":               {"DBSIZE"},
				strconv.Itoa(2e6): {"STRLEN", "big"},
			}
			for want, cmd := range checks {
				if got := cli(t, addr, "", cmd...); got != want {
					t.Errorf("%v = %q, want %q", cmd, got, want)
				}
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	src := redistest.Start(t)
	url := strings.Replace(src.URL, src.Password, "wrong", 1)
	_, err := redis.Backup(context.Background(), newVault(t), url, redis.BackupOptions{})
	if !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("wrong password: %v, want Unauthorized", err)
	}
	_, err = redis.Backup(context.Background(), newVault(t), "http://x", redis.BackupOptions{})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("bad scheme: %v, want Invalid", err)
	}
}

func rdb(body string) []byte {
	b := []byte("REDIS0011" + body + "\xff")
	var sum [8]byte
	c := ^crc64.Update(^uint64(0), crc64.MakeTable(0x95ac9329ac4bc9b5), b)
	binary.LittleEndian.PutUint64(sum[:], c)
	return append(b, sum[:]...)
}

// fakeMaster answers a replica handshake with payload as the RDB.
func fakeMaster(t *testing.T, payload []byte) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if !strings.HasPrefix(line, "*") {
				continue
			}
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			var args []string
			for i := 0; i < n; i++ {
				r.ReadString('\n')
				a, _ := r.ReadString('\n')
				args = append(args, strings.TrimSpace(a))
			}
			switch strings.ToUpper(args[0]) {
			case "INFO":
				body := "redis_version:7.0.15\r\n"
				fmt.Fprintf(c, "$%d\r\n%s\r\n", len(body), body)
			case "PSYNC":
				fmt.Fprintf(c, "+FULLRESYNC abc 0\r\n\n\n$%d\r\n%s", len(payload), payload)
				return
			default:
				fmt.Fprintf(c, "+OK\r\n")
			}
		}
	}()
	return "redis://" + l.Addr().String()
}

func TestCorruptRDBRefused(t *testing.T) {
	good := rdb("\xfe\x00\x00\x03key\x05value")
	if _, err := redis.VerifyRDB(good); err != nil {
		t.Fatalf("valid RDB refused: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[12] ^= 0x40
	v := newVault(t)
	_, err := redis.Backup(context.Background(), v, fakeMaster(t, bad), redis.BackupOptions{})
	if !errs.Is(err, errs.Corrupt) {
		t.Fatalf("corrupt RDB: %v, want Corrupt", err)
	}
	pts, err := v.Points(context.Background())
	must(t, err)
	if len(pts) != 0 {
		t.Fatalf("a point was saved for a corrupt RDB")
	}
	_, err = redis.Backup(context.Background(), v, fakeMaster(t, good), redis.BackupOptions{Resource: "fake"})
	must(t, err)
	target := filepath.Join(t.TempDir(), "dump.rdb")
	_, err = redis.Restore(context.Background(), v, "fake", target, redis.RestoreOptions{})
	must(t, err)
	got, err := os.ReadFile(target)
	must(t, err)
	if string(got) != string(good) {
		t.Fatalf("restored bytes differ")
	}
}

func TestVerifyRDB(t *testing.T) {
	good := rdb(strings.Repeat("payload", 100))
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"valid", good, true},
		{"no checksum (rdbchecksum no)", append(append([]byte(nil), good[:len(good)-8]...), make([]byte, 8)...), true},
		{"old version without trailer", []byte("REDIS0004\xfe\x00\xff"), true},
		{"flipped byte", append(append([]byte(nil), good[:20]...), append([]byte{good[20] ^ 1}, good[21:]...)...), false},
		{"truncated", good[:len(good)-3], false},
		{"not redis", []byte("HELLO0011xxxxxxxxxxxxxxxx"), false},
		{"bad version", []byte("REDISabcd\xff12345678"), false},
		{"empty", nil, false},
	} {
		_, err := redis.VerifyRDB(tc.b)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		// Fed in small pieces the verdict is the same.
		var v redis.Verifier
		for i := 0; i < len(tc.b); i += 3 {
			v.Write(tc.b[i:min(i+3, len(tc.b))])
		}
		if _, err2 := v.Finish(); (err2 == nil) != (err == nil) {
			t.Errorf("%s: piecewise verdict %v differs from whole %v", tc.name, err2, err)
		}
	}
}

func FuzzVerifyRDB(f *testing.F) {
	f.Add(rdb("abc"), 5)
	f.Add([]byte("REDIS0009"), 1)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		_, err := redis.VerifyRDB(b)
		if step <= 0 || step > 64 {
			step = 7
		}
		var v redis.Verifier
		for i := 0; i < len(b); i += step {
			v.Write(b[i:min(i+step, len(b))])
		}
		if _, err2 := v.Finish(); (err2 == nil) != (err == nil) {
			t.Fatalf("piecewise verdict %v differs from whole %v", err2, err)
		}
	})
}
