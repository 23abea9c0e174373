package s3server

import (
	"context"
	"errors"
	"fmt"
	"github.com/rewind-dr/rewind/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvBinary names the environment variable that may point at the versitygw binary.
const EnvBinary = "REWIND_VERSITYGW"

// defaultBinary is where the development environment builds versitygw.
const defaultBinary = "/root/.cache/rewind-tools/versitygw"

const installHint = "install it with `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` " +
	"and put it on $PATH or point $" + EnvBinary + " at it"

// Server is a running S3 server with one empty bucket.
type Server struct {
	Endpoint  string // host:port on 127.0.0.1
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string

	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan error
}

// URL returns a vault location for prefix in the server's bucket:
// s3+http://host:port/bucket/prefix (no trailing slash when prefix is empty).
func (s *Server) URL(prefix string) string {
	u := "s3+http://" + s.Endpoint + "/" + s.Bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u
}

// Client returns a minio client for the server, for tests that inspect the bucket directly.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: s.Region,
	})
	if err != nil {
		t.Fatalf("s3server: client: %v", err)
	}
	return c
}

// Binary returns the path of the versitygw binary, or an error saying how to install it.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %v; %s", EnvBinary, p, err, installHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(defaultBinary); err == nil {
		return defaultBinary, nil
	}
	return "", fmt.Errorf("versitygw not found in $%s, $PATH or %s; %s", EnvBinary, defaultBinary, installHint)
}

// Start starts a server and registers its shutdown with t.Cleanup. It fails the test if the
// binary is missing or the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("s3server: %v", err)
	}
	var lastErr error
	// The free port is found by binding and releasing it, so another process may take it
	// before the server binds; try a few ports.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("s3server: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  addr,
		AccessKey: "AK" + testenv.RandomHex(9),
		SecretKey: testenv.RandomHex(20),
		Bucket:    "rewind-test",
		Region:    "us-east-1",
		out:       &testenv.SyncBuffer{},
		done:      make(chan error, 1),
	}
	s.cmd = exec.Command(bin,
		"--port", addr,
		"--region", s.Region,
		"--quiet",
		"posix", data)
	// Credentials go through the environment, not the command line, so that they do not
	// show in process listings; the rest of the environment is dropped so that a
	// developer's VGW_* or ROOT_* variables cannot change the server.
	s.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"ROOT_ACCESS_KEY=" + s.AccessKey,
		"ROOT_SECRET_KEY=" + s.SecretKey,
	}
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.done <- s.cmd.Wait() }()

	if err := s.waitReady(15 * time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("versitygw on %s: %w; output:\n%s", addr, err, s.out.String())
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("s3server: stop: %v; output:\n%s", err, s.out.String())
		}
	})
	return s, nil
}

// waitReady polls until the server answers an authenticated request, then makes the bucket.
func (s *Server) waitReady(timeout time.Duration) error {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:     s.Region,
		MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = c.ListBuckets(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return fmt.Errorf("create bucket %s: %w", s.Bucket, err)
	}
	return nil
}

// stop terminates the server and waits for it to exit.
func (s *Server) stop() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("server had already exited: %v", err)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	if err := <-s.done; err != nil && !isKilled(err) {
		return err
	}
	return errors.New("server ignored SIGTERM for 10s and was killed")
}

func isKilled(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled()
		}
	}
	return false
}

// freeAddr returns a free loopback address, host:port.
func freeAddr() (string, error) {
	port, err := testenv.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
