package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/testenv/s3server"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/backendtest"
	"github.com/rewind-dr/rewind/internal/vault/backend/s3"
)

func config(srv *s3server.Server, prefix string) s3.Config {
	return s3.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    srv.Bucket,
		Prefix:    prefix,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Region:    srv.Region,
	}
}

func open(t *testing.T, cfg s3.Config) *s3.Backend {
	t.Helper()
	b, err := s3.New(cfg)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return b
}

func TestConformance(t *testing.T) {
	srv := s3server.Start(t)
	var n atomic.Int64
	// One server, a fresh prefix per subtest; the paging test goes past S3's 1000-key page.
	backendtest.RunWith(t, backendtest.Options{ManyPacks: 1100, Parallel: 32}, func(t *testing.T) backend.Backend {
		return open(t, config(srv, fmt.Sprintf("vaults/v%d", n.Add(1))))
	})
}

func TestConformanceNoPrefix(t *testing.T) {
	srv := s3server.Start(t)
	var n atomic.Int64
	backendtest.RunWith(t, backendtest.Options{ManyPacks: 10, LargeSize: 1 << 20}, func(t *testing.T) backend.Backend {
		// Each subtest needs an empty bucket root: use a bucket per subtest.
		cfg := config(srv, "")
		cfg.Bucket = fmt.Sprintf("root-%d", n.Add(1))
		if err := srv.Client(t).MakeBucket(context.Background(), cfg.Bucket, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		return open(t, cfg)
	})
}

func TestKeyLayout(t *testing.T) {
	srv := s3server.Start(t)
	ctx := context.Background()
	pack := "ab" + strings.Repeat("1", 62)
	for _, prefix := range []string{"", "/some/prefix/"} {
		b := open(t, config(srv, prefix))
		want := map[backend.Handle]string{
			{Type: backend.Config, Name: "x"}: "config",
			{Type: backend.Key, Name: "k"}:    "keys/k",
			{Type: backend.Pack, Name: pack}:  "packs/ab/" + pack,
			{Type: backend.Index, Name: "i"}:  "index/i",
			{Type: backend.Point, Name: "p"}:  "points/p",
			{Type: backend.Lock, Name: "l"}:   "locks/l",
		}
		for h, rel := range want {
			if err := b.Save(ctx, h, []byte(rel)); err != nil {
				t.Fatal(err)
			}
			key := rel
			if p := strings.Trim(prefix, "/"); p != "" {
				key = p + "/" + rel
			}
			if _, err := srv.Client(t).StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{}); err != nil {
				t.Errorf("prefix %q: %v not stored at key %q: %v", prefix, h, key, err)
			}
		}
	}
}

func TestLocationHasNoCredentials(t *testing.T) {
	cfg := s3.Config{Endpoint: "127.0.0.1:9", Bucket: "bkt", Prefix: "/p/q/", AccessKey: "AKIDSECRETLOOKING", SecretKey: "verysecretkey"}
	b := open(t, cfg)
	if got, want := b.Location(), "s3+http://127.0.0.1:9/bkt/p/q"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	cfg.UseTLS = true
	if got := open(t, cfg).Location(); got != "s3://127.0.0.1:9/bkt/p/q" {
		t.Errorf("TLS Location = %q", got)
	}
	// Port 9 (discard) is closed on loopback: the error is Unavailable and names no secret.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.Stat(ctx, backend.Handle{Type: backend.Config})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Stat against a closed port = %v, want Unavailable", err)
	}
	for _, secret := range []string{cfg.AccessKey, cfg.SecretKey} {
		if strings.Contains(err.Error(), secret) || strings.Contains(errs.HintOf(err), secret) {
			t.Errorf("error %q reveals a credential", err)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := s3.Config{Endpoint: "h:1", Bucket: "bucket", AccessKey: "a", SecretKey: "s"}
	for name, mod := range map[string]func(*s3.Config){
		"no endpoint":   func(c *s3.Config) { c.Endpoint = "" },
		"scheme":        func(c *s3.Config) { c.Endpoint = "http://h:1" },
		"no bucket":     func(c *s3.Config) { c.Bucket = "" },
		"bad bucket":    func(c *s3.Config) { c.Bucket = "Not_A_Bucket" },
		"dotdot prefix": func(c *s3.Config) { c.Prefix = "a/../b" },
		"double slash":  func(c *s3.Config) { c.Prefix = "a//b" },
		"no access key": func(c *s3.Config) { c.AccessKey = "" },
		"no secret key": func(c *s3.Config) { c.SecretKey = "" },
	} {
		cfg := good
		mod(&cfg)
		if _, err := s3.New(cfg); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: New = %v, want Invalid", name, err)
		}
	}
	if _, err := s3.New(good); err != nil {
		t.Errorf("New(good) = %v", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := s3server.Start(t)
	cfg := config(srv, "v")
	cfg.SecretKey = "wrong-secret-key-value"
	b := open(t, cfg)
	ctx := context.Background()
	err := b.Save(ctx, backend.Handle{Type: backend.Key, Name: "k"}, []byte("x"))
	if !errs.Is(err, errs.Unauthorized) || errs.HintOf(err) == "" {
		t.Fatalf("Save with a wrong secret = %v (hint %q), want Unauthorized with a hint", err, errs.HintOf(err))
	}
	if strings.Contains(err.Error(), cfg.SecretKey) {
		t.Errorf("error reveals the secret: %v", err)
	}
	err = b.List(ctx, backend.Pack, func(backend.FileInfo) error { return nil })
	if !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("List with a wrong secret = %v, want Unauthorized", err)
	}
}

func TestMissingBucket(t *testing.T) {
	srv := s3server.Start(t)
	cfg := config(srv, "v")
	cfg.Bucket = "no-such-bucket"
	b := open(t, cfg)
	ctx := context.Background()
	if _, err := b.Stat(ctx, backend.Handle{Type: backend.Config}); !errs.Is(err, errs.NotFound) {
		t.Errorf("Stat in a missing bucket = %v, want NotFound", err)
	}
	err := b.List(ctx, backend.Pack, func(backend.FileInfo) error { return nil })
	if !errs.Is(err, errs.NotFound) || errs.HintOf(err) == "" {
		t.Errorf("List in a missing bucket = %v, want NotFound with a hint", err)
	}
}

func TestCreate(t *testing.T) {
	srv := s3server.Start(t)
	ctx := context.Background()
	cfg := config(srv, "new/vault")
	cfg.Bucket = "made-by-create"
	b := open(t, cfg)
	if err := b.Create(ctx); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if ok, err := srv.Client(t).BucketExists(ctx, cfg.Bucket); err != nil || !ok {
		t.Fatalf("bucket after Create: %v, %v", ok, err)
	}
	if err := b.Create(ctx); err != nil {
		t.Fatalf("second Create with no config: %v", err)
	}
	if err := b.Save(ctx, backend.Handle{Type: backend.Config}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx); !errs.Is(err, errs.Exists) {
		t.Fatalf("Create over a vault = %v, want Exists", err)
	}
	// Another prefix in the same bucket is free.
	cfg.Prefix = "other"
	if err := open(t, cfg).Create(ctx); err != nil {
		t.Fatalf("Create beside a vault: %v", err)
	}
}

// proxy forwards to srv, letting a test alter requests or answer them itself.
func proxy(t *testing.T, srv *s3server.Server, handle func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: srv.Endpoint}
	rp := httputil.NewSingleHostReverseProxy(target)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handle(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

func TestCorruptedUploadRejected(t *testing.T) {
	srv := s3server.Start(t)
	endpoint := proxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut {
			return false
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		body[len(body)/2] ^= 0x40 // damage one bit on the way
		r.Body = io.NopCloser(bytes.NewReader(body))
		return false
	})
	cfg := config(srv, "v")
	cfg.Endpoint = endpoint
	b := open(t, cfg)
	ctx := context.Background()
	h := backend.Handle{Type: backend.Pack, Name: "aa01"}
	err := b.Save(ctx, h, bytes.Repeat([]byte("rewind"), 1000))
	if err == nil {
		t.Fatal("a damaged upload was accepted")
	}
	if !errs.Is(err, errs.Unavailable) {
		t.Errorf("damaged upload error kind = %v (%v), want Unavailable (worth a retry)", errs.KindOf(err), err)
	}
	direct := open(t, config(srv, "v"))
	if _, err := direct.Stat(ctx, h); !errs.Is(err, errs.NotFound) {
		t.Fatalf("after a rejected upload Stat = %v, want NotFound", err)
	}
}

func TestServerErrorsAreUnavailable(t *testing.T) {
	srv := s3server.Start(t)
	var fail atomic.Int32
	endpoint := proxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		switch fail.Load() {
		case 1:
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return true
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	cfg := config(srv, "v")
	cfg.Endpoint = endpoint
	b := open(t, cfg)
	ctx := context.Background()
	h := backend.Handle{Type: backend.Index, Name: "i"}
	if err := b.Save(ctx, h, []byte("index")); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []int32{1, 2} {
		fail.Store(mode)
		if err := b.Save(ctx, h, []byte("x")); !errs.Is(err, errs.Unavailable) {
			t.Errorf("mode %d: Save = %v, want Unavailable", mode, err)
		}
		if _, err := backend.LoadAll(ctx, b, h, 0, 0); !errs.Is(err, errs.Unavailable) {
			t.Errorf("mode %d: Load = %v, want Unavailable", mode, err)
		}
		if err := b.List(ctx, backend.Index, func(backend.FileInfo) error { return nil }); !errs.Is(err, errs.Unavailable) {
			t.Errorf("mode %d: List = %v, want Unavailable", mode, err)
		}
	}
}

func TestTruncatedBodyIsUnavailable(t *testing.T) {
	srv := s3server.Start(t)
	var cut atomic.Bool
	endpoint := proxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !cut.Load() {
			return false
		}
		// Promise 1000 bytes, send 10, then hang up.
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("response writer cannot hijack")
			return true
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		defer conn.Close()
		fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n0123456789")
		buf.Flush()
		return true
	})
	cfg := config(srv, "v")
	cfg.Endpoint = endpoint
	b := open(t, cfg)
	ctx := context.Background()
	h := backend.Handle{Type: backend.Pack, Name: "cc01"}
	if err := b.Save(ctx, h, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cut.Store(true)
	_, err := backend.LoadAll(ctx, b, h, 0, 0)
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Load over a cut connection = %v, want Unavailable", err)
	}
}

func BenchmarkSave4MiB(b *testing.B) {
	srv := s3server.Start(b)
	be, err := s3.New(config(srv, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		h := backend.Handle{Type: backend.Pack, Name: fmt.Sprintf("%02x%08d", i%256, i)}
		if err := be.Save(context.Background(), h, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadRange64KiB(b *testing.B) {
	srv := s3server.Start(b)
	be, err := s3.New(config(srv, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	h := backend.Handle{Type: backend.Pack, Name: "aa00"}
	if err := be.Save(context.Background(), h, make([]byte, 16<<20)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		off := int64(i%200) * 64 << 10
		err := be.Load(context.Background(), h, off, int64(len(buf)), func(rd io.Reader) error {
			_, err := io.ReadFull(rd, buf)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
