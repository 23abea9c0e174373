package location

import (
	"context"
	"net/url"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/local"
	"github.com/rewind-dr/rewind/internal/vault/backend/s3"
)

// Credentials for object stores. Local locations ignore them.
type Credentials struct {
	AccessKey string
	SecretKey string
	Region    string // empty: discovered from the server
}

// Forms lists the accepted location forms, for help texts and error hints.
const Forms = "accepted forms: /path/to/vault, file:///path/to/vault, " +
	"s3://host[:port]/bucket[/prefix] (HTTPS), s3+http://host:port/bucket[/prefix] (plain HTTP, for local test servers)"

// Spec is a parsed location.
type Spec struct {
	Scheme string // "local", "s3" or "s3+http"
	Path   string // local directory
	S3     s3.Config
}

// Parse parses loc without opening anything. S3 credentials come from creds.
func Parse(loc string, creds Credentials) (Spec, error) {
	const op = "location.Parse"
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, errs.Errorf(op, errs.Invalid, format, args...).WithHint(Forms)
	}
	if strings.TrimSpace(loc) == "" {
		return bad("empty vault location")
	}
	scheme, rest, hasScheme := strings.Cut(loc, "://")
	if !hasScheme {
		if strings.Contains(loc, ":") && !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, ".") {
			// "s3:bucket" or "sftp:host:/path": a scheme without "//" is a mistake more often
			// than a relative directory with a colon in its name.
			return bad("vault location %q: unknown form (a relative directory containing ':' must start with ./)", loc)
		}
		return Spec{Scheme: "local", Path: loc}, nil
	}
	switch strings.ToLower(scheme) {
	case "file":
		u, err := url.Parse(loc)
		if err != nil {
			return bad("vault location %q: %v", loc, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return bad("vault location %q: file URLs cannot name a remote host %q", loc, u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return bad("vault location %q: a file URL needs an absolute path, as in file:///srv/vault", loc)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return bad("vault location %q: file URLs take no query or fragment", loc)
		}
		return Spec{Scheme: "local", Path: u.Path}, nil
	case "s3", "s3+http":
		useTLS := strings.ToLower(scheme) == "s3"
		host, path, _ := strings.Cut(rest, "/")
		if host == "" {
			return bad("vault location %q: missing host", redact(loc))
		}
		if strings.Contains(host, "@") {
			return bad("vault location %q: credentials do not belong in the location; pass them separately", redact(loc))
		}
		if strings.ContainsAny(path, "?#") {
			return bad("vault location %q: S3 locations take no query or fragment", loc)
		}
		bucket, prefix, _ := strings.Cut(path, "/")
		if bucket == "" {
			return bad("vault location %q: missing bucket after the host", loc)
		}
		return Spec{Scheme: strings.ToLower(scheme), S3: s3.Config{
			Endpoint:  host,
			Bucket:    bucket,
			Prefix:    strings.Trim(prefix, "/"),
			AccessKey: creds.AccessKey,
			SecretKey: creds.SecretKey,
			UseTLS:    useTLS,
			Region:    creds.Region,
		}}, nil
	}
	return bad("vault location %q: unknown scheme %q", redact(loc), scheme)
}

// redact removes user information from a URL-like string so errors never echo a secret.
func redact(loc string) string {
	scheme, rest, ok := strings.Cut(loc, "://")
	if !ok {
		return loc
	}
	host, path, hasPath := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = "…@" + host[i+1:]
	}
	if hasPath {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}

// Open parses loc and returns its backend. It does not contact the storage; the first call
// on the backend does. The caller owns the backend and must Close it.
func Open(ctx context.Context, loc string, creds Credentials) (backend.Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, errs.E("location.Open", errs.Canceled, err)
	}
	spec, err := Parse(loc, creds)
	if err != nil {
		return nil, err
	}
	if spec.Scheme == "local" {
		return local.New(spec.Path)
	}
	return s3.New(spec.S3)
}
