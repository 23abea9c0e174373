package location_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/testenv/s3server"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/local"
	"github.com/rewind-dr/rewind/internal/vault/backend/location"
	"github.com/rewind-dr/rewind/internal/vault/backend/s3"
)

func TestParse(t *testing.T) {
	creds := location.Credentials{AccessKey: "ak", SecretKey: "sk", Region: "eu-1"}
	s3cfg := func(endpoint, bucket, prefix string, tls bool) s3.Config {
		return s3.Config{Endpoint: endpoint, Bucket: bucket, Prefix: prefix, AccessKey: "ak", SecretKey: "sk", UseTLS: tls, Region: "eu-1"}
	}
	for _, c := range []struct {
		in   string
		want location.Spec
	}{
		{"/srv/vault", location.Spec{Scheme: "local", Path: "/srv/vault"}},
		{"relative/vault", location.Spec{Scheme: "local", Path: "relative/vault"}},
		{"./odd:name", location.Spec{Scheme: "local", Path: "./odd:name"}},
		{"file:///srv/vault", location.Spec{Scheme: "local", Path: "/srv/vault"}},
		{"file://localhost/srv/vault", location.Spec{Scheme: "local", Path: "/srv/vault"}},
		{"file:///srv/with%20space", location.Spec{Scheme: "local", Path: "/srv/with space"}},
		{"s3://s3.example.com/bkt", location.Spec{Scheme: "s3", S3: s3cfg("s3.example.com", "bkt", "", true)}},
		{"s3://s3.example.com:9000/bkt/a/b/", location.Spec{Scheme: "s3", S3: s3cfg("s3.example.com:9000", "bkt", "a/b", true)}},
		{"s3+http://127.0.0.1:7070/bkt/p", location.Spec{Scheme: "s3+http", S3: s3cfg("127.0.0.1:7070", "bkt", "p", false)}},
		{"S3://h:1/bkt", location.Spec{Scheme: "s3", S3: s3cfg("h:1", "bkt", "", true)}},
	} {
		got, err := location.Parse(c.in, creds)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, mention string }{
		{"", "empty"},
		{"   ", "empty"},
		{"s3://", "missing host"},
		{"s3://host:9000", "missing bucket"},
		{"s3://host:9000/", "missing bucket"},
		{"s3+http://host//prefix", "missing bucket"},
		{"s3://user:hunter2@host/bkt", "credentials"},
		{"s3://host/bkt?x=1", "query"},
		{"ftp://host/path", "unknown scheme"},
		{"sftp://host/path", "unknown scheme"},
		{"s3:bucket", "unknown form"},
		{"file://otherhost/srv", "remote host"},
		{"file://", "absolute path"},
	} {
		_, err := location.Parse(c.in, location.Credentials{})
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("Parse(%q) = %v, want Invalid", c.in, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Parse(%q) error %q does not mention %q", c.in, err, c.mention)
		}
		if !strings.Contains(errs.HintOf(err), "s3+http://") {
			t.Errorf("Parse(%q) hint %q does not show the accepted forms", c.in, errs.HintOf(err))
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error reveals a password: %v", c.in, err)
		}
	}
}

func TestOpenLocal(t *testing.T) {
	dir := t.TempDir()
	for _, loc := range []string{dir, "file://" + dir} {
		b, err := location.Open(context.Background(), loc, location.Credentials{})
		if err != nil {
			t.Fatalf("Open(%q): %v", loc, err)
		}
		if _, ok := b.(*local.Local); !ok || b.Location() != dir {
			t.Errorf("Open(%q) = %T at %q, want local at %q", loc, b, b.Location(), dir)
		}
		b.Close()
	}
}

func TestOpenS3MissingCredentials(t *testing.T) {
	_, err := location.Open(context.Background(), "s3://h:1/bkt", location.Credentials{})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("Open without credentials = %v, want Invalid", err)
	}
}

// TestOpenS3 goes through a real server: a file saved through one Open of a URL is found
// through a second Open of the same URL, and not under another prefix.
func TestOpenS3(t *testing.T) {
	srv := s3server.Start(t)
	ctx := context.Background()
	creds := location.Credentials{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region}
	url := srv.URL("team/vault")
	a, err := location.Open(ctx, url, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Location() != url {
		t.Errorf("Location = %q, want %q", a.Location(), url)
	}
	h := backend.Handle{Type: backend.Key, Name: "k1"}
	if err := a.Save(ctx, h, []byte("key")); err != nil {
		t.Fatal(err)
	}
	b, err := location.Open(ctx, url+"/", creds)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := backend.LoadAll(ctx, b, h, 0, 0)
	if err != nil || !bytes.Equal(got, []byte("key")) {
		t.Fatalf("Load through a second Open = %q, %v", got, err)
	}
	other, err := location.Open(ctx, srv.URL("team/other"), creds)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Stat(ctx, h); !errs.Is(err, errs.NotFound) {
		t.Errorf("another prefix sees the file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/srv/v", "file:///srv/v", "s3://h:1/b/p", "s3+http://127.0.0.1:9/b", "s3://u:p@h/b", "x://", "s3:///", "file://h/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		spec, err := location.Parse(in, location.Credentials{AccessKey: "a", SecretKey: "s"})
		if err != nil {
			if !errs.Is(err, errs.Invalid) || errs.HintOf(err) == "" {
				t.Fatalf("Parse(%q) = %v: want Invalid with a hint", in, err)
			}
			return
		}
		switch spec.Scheme {
		case "local":
			if spec.Path == "" {
				t.Fatalf("Parse(%q): empty local path", in)
			}
		case "s3", "s3+http":
			if spec.S3.Endpoint == "" || spec.S3.Bucket == "" || strings.Contains(spec.S3.Endpoint, "@") {
				t.Fatalf("Parse(%q) = %+v: missing endpoint or bucket, or user info kept", in, spec.S3)
			}
		default:
			t.Fatalf("Parse(%q): unknown scheme %q", in, spec.Scheme)
		}
	})
}
