package s3server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/rewind-dr/rewind/internal/testenv/s3server"
)

func TestStart(t *testing.T) {
	s := s3server.Start(t)
	if host, _, err := net.SplitHostPort(s.Endpoint); err != nil || host != "127.0.0.1" {
		t.Fatalf("Endpoint %q is not a loopback host:port (%v)", s.Endpoint, err)
	}
	if want := "s3+http://" + s.Endpoint + "/" + s.Bucket + "/a/b"; s.URL("a/b") != want {
		t.Errorf("URL = %q, want %q", s.URL("a/b"), want)
	}
	if strings.HasSuffix(s.URL(""), "/") {
		t.Errorf("URL(\"\") = %q ends with a slash", s.URL(""))
	}
	ctx := context.Background()
	c := s.Client(t)
	ok, err := c.BucketExists(ctx, s.Bucket)
	if err != nil || !ok {
		t.Fatalf("bucket %s: exists=%v, %v", s.Bucket, ok, err)
	}
	data := []byte("hello")
	if _, err := c.PutObject(ctx, s.Bucket, "x/y", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, s.Bucket, "x/y", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetObject = %q, %v", got, err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := s3server.Start(t), s3server.Start(t)
	if a.Endpoint == b.Endpoint || a.AccessKey == b.AccessKey {
		t.Fatalf("servers share endpoint or keys: %s %s", a.Endpoint, b.Endpoint)
	}
}
