package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

var (
	_ backend.Backend = (*Backend)(nil)
	_ backend.Creator = (*Backend)(nil)
)

// Config locates a vault in a bucket.
type Config struct {
	Endpoint  string // host:port (or host) of the S3 service, no scheme
	Bucket    string
	Prefix    string // key prefix of the vault inside the bucket; may be empty
	AccessKey string
	SecretKey string
	UseTLS    bool   // HTTPS when true; plain HTTP is for loopback test servers
	Region    string // empty lets the client discover it (us-east-1 on most non-AWS servers)
}

// Backend is an S3 vault location. It is safe for concurrent use.
type Backend struct {
	client    *minio.Client
	core      minio.Core
	transport *http.Transport
	bucket    string
	prefix    string // cleaned: no leading or trailing slash
	loc       string
}

// New validates cfg and returns a backend. It does not contact the server.
func New(cfg Config) (*Backend, error) {
	const op = "s3.New"
	if cfg.Endpoint == "" {
		return nil, errs.Errorf(op, errs.Invalid, "empty S3 endpoint").
			WithHint("give the endpoint as host:port, e.g. s3.eu-west-1.amazonaws.com or 127.0.0.1:9000")
	}
	if strings.Contains(cfg.Endpoint, "/") {
		return nil, errs.Errorf(op, errs.Invalid, "S3 endpoint %q must be host:port without a scheme or path", cfg.Endpoint).
			WithHint("give the endpoint as host:port, e.g. s3.eu-west-1.amazonaws.com or 127.0.0.1:9000")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "bucket name %q: %v", cfg.Bucket, err).
			WithHint("bucket names are 3 to 63 lowercase letters, digits, dots and hyphens")
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	for _, seg := range strings.Split(prefix, "/") {
		if prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return nil, errs.Errorf(op, errs.Invalid, "key prefix %q has an empty, \".\" or \"..\" segment", cfg.Prefix)
		}
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errs.Errorf(op, errs.Invalid, "missing S3 credentials for %s", cfg.Endpoint).
			WithHint("provide both an access key and a secret key")
	}
	transport, err := minio.DefaultTransport(cfg.UseTLS)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Transport: transport,
		Secure:    cfg.UseTLS,
		Region:    cfg.Region,
		// One attempt per call: retrying is the retry decorator's job, in one place.
		MaxRetries: 1,
		// Path-style addressing works with every server (virtual hosts need DNS).
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "S3 endpoint %q: %v", cfg.Endpoint, err)
	}
	scheme := "s3"
	if !cfg.UseTLS {
		scheme = "s3+http"
	}
	loc := scheme + "://" + cfg.Endpoint + "/" + cfg.Bucket
	if prefix != "" {
		loc += "/" + prefix
	}
	return &Backend{client: client, core: minio.Core{Client: client}, transport: transport, bucket: cfg.Bucket, prefix: prefix, loc: loc}, nil
}

// Location returns s3://endpoint/bucket/prefix (s3+http:// without TLS).
func (b *Backend) Location() string { return b.loc }

// Close releases idle connections.
func (b *Backend) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// key returns the object key of h, or an Invalid error.
func (b *Backend) key(op string, h backend.Handle) (string, error) {
	rel, err := backend.RelPath(h)
	if err != nil {
		return "", errs.E(op, errs.Invalid, err)
	}
	return b.join(rel), nil
}

func (b *Backend) join(rel string) string {
	if b.prefix == "" {
		return rel
	}
	return b.prefix + "/" + rel
}

// Save uploads data in a single PUT with a Content-MD5 header, so the server rejects a
// body that does not match (BadDigest, reported as Unavailable: sending it again may
// succeed). The payload is not also SHA-256 signed: over plain HTTP that would turn a
// damaged body into SignatureDoesNotMatch, indistinguishable from a wrong secret key, and
// the vault authenticates every file's contents itself. S3 replaces objects atomically.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	const op = "s3.Save"
	key, err := b.key(op, h)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	_, err = b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		SendContentMd5:       true,
		DisableContentSha256: true,
		DisableMultipart:     true,
	})
	if err != nil {
		return b.classify(ctx, op, h, err)
	}
	return nil
}

// Load fetches the range with one GET and checks it against the object's size as reported
// in Content-Range. A range past the end is Invalid, a missing object NotFound.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	const op = "s3.Load"
	key, err := b.key(op, h)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	if offset < 0 || length < 0 {
		return errs.Errorf(op, errs.Invalid, "%v: negative range %d+%d", h, offset, length)
	}
	var opts minio.GetObjectOptions
	ranged := offset > 0 || length > 0
	if ranged {
		end := int64(0) // bytes=offset-
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return errs.E(op, errs.Invalid, fmt.Errorf("%v: %w", h, err))
		}
	}
	body, _, header, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		if resp := toErrorResponse(err); resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return b.invalidRange(ctx, op, h, key, offset, length, fn)
		}
		return b.classify(ctx, op, h, err)
	}
	defer func() {
		// Reading to EOF lets the HTTP client reuse the connection; a reader that fn left
		// far from the end is cheaper to drop than to drain.
		_, _ = io.CopyN(io.Discard, body, 64<<10)
		body.Close()
	}()
	n, err := rangeLength(header, offset, length, ranged)
	if err != nil {
		return errs.E(op, errs.Invalid, fmt.Errorf("%v: %w", h, err))
	}
	if !ranged || header.Get("Content-Range") != "" {
		return fn(&bodyReader{b: b, ctx: ctx, h: h, r: io.LimitReader(body, n), n: n})
	}
	// The server ignored the Range header and sent the whole object: skip to offset.
	if _, err := io.CopyN(io.Discard, body, offset); err != nil {
		return b.classify(ctx, op, h, err)
	}
	return fn(&bodyReader{b: b, ctx: ctx, h: h, r: io.LimitReader(body, n), n: n})
}

// rangeLength returns how many bytes the body must deliver, or an error if the object is
// too short for the range asked.
func rangeLength(header http.Header, offset, length int64, ranged bool) (int64, error) {
	var total int64
	if cr := header.Get("Content-Range"); cr != "" {
		// "bytes first-last/total"
		slash := strings.LastIndexByte(cr, '/')
		if slash < 0 {
			return 0, fmt.Errorf("server sent a malformed Content-Range %q", cr)
		}
		t, err := strconv.ParseInt(cr[slash+1:], 10, 64)
		if err != nil || t < 0 {
			return 0, fmt.Errorf("server sent a malformed Content-Range %q", cr)
		}
		total = t
	} else {
		t, err := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
		if err != nil || t < 0 {
			return 0, fmt.Errorf("server sent no usable Content-Length")
		}
		if !ranged {
			return t, nil
		}
		total = t // the server ignored the range and sent the whole object
	}
	// Written so that no sum can overflow: offset, length and total are all >= 0.
	if offset > total || length > total-offset {
		return 0, fmt.Errorf("range %d+%d outside file of %d bytes", offset, length, total)
	}
	if length > 0 {
		return length, nil
	}
	return total - offset, nil
}

// invalidRange handles a 416 answer: reading from exactly the end of a file is an empty,
// valid read (S3 refuses "bytes=size-"); anything else is Invalid.
func (b *Backend) invalidRange(ctx context.Context, op string, h backend.Handle, key string, offset, length int64, fn func(io.Reader) error) error {
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return b.classify(ctx, op, h, err)
	}
	if length == 0 && offset == info.Size {
		return fn(bytes.NewReader(nil))
	}
	return errs.Errorf(op, errs.Invalid, "%v: range %d+%d outside file of %d bytes", h, offset, length, info.Size)
}

// bodyReader classifies transport errors while fn reads and reports a body that ends
// before the expected length as Unavailable (io.ErrUnexpectedEOF).
type bodyReader struct {
	b    *Backend
	ctx  context.Context
	h    backend.Handle
	r    io.Reader
	n    int64 // bytes still expected
	fail error
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.fail != nil {
		return 0, r.fail
	}
	n, err := r.r.Read(p)
	r.n -= int64(n)
	if err == io.EOF && r.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		r.fail = r.b.classify(r.ctx, "s3.Load", r.h, err)
		return n, r.fail
	}
	return n, err
}

// Stat returns the object's size and modification time.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	const op = "s3.Stat"
	key, err := b.key(op, h)
	if err != nil {
		return backend.FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, errs.E(op, errs.Canceled, err)
	}
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, b.classify(ctx, op, h, err)
	}
	name := h.Name
	if h.Type == backend.Config {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List pages through every object under the type's prefix (the client asks for the next
// page with a continuation token). Listing errors are returned, never a short listing.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	const op = "s3.List"
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	switch t {
	case backend.Config:
		fi, err := b.Stat(ctx, backend.Handle{Type: backend.Config})
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	case backend.Key, backend.Pack, backend.Index, backend.Point, backend.Lock:
	default:
		return errs.Errorf(op, errs.Invalid, "%v: unknown file type", t)
	}
	prefix := b.join(t.String()) + "/"
	// Stopping early (fn's error) must end the client's listing goroutine.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range b.client.ListObjects(lctx, b.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return b.classify(ctx, op, backend.Handle{Type: t}, obj.Err)
		}
		rest := strings.TrimPrefix(obj.Key, prefix)
		name := rest
		if t == backend.Pack {
			// packs/<xx>/<name>; anything else under packs/ is not part of the layout.
			dir, file, ok := strings.Cut(rest, "/")
			if !ok || len(dir) != 2 || file == "" || strings.Contains(file, "/") || !strings.HasPrefix(file, dir) {
				continue
			}
			name = file
		} else if name == "" || strings.Contains(name, "/") {
			continue // a directory marker or a deeper key: not part of the layout
		}
		if err := fn(backend.FileInfo{Name: name, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// The channel also closes when ctx ends; do not mistake that for a complete listing.
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	return nil
}

// Remove deletes the object. S3 deletes are silent about missing keys, so Remove checks
// first; a concurrent delete between the two calls is reported as success.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	const op = "s3.Remove"
	key, err := b.key(op, h)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	if _, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{}); err != nil {
		return b.classify(ctx, op, h, err)
	}
	if err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return b.classify(ctx, op, h, err)
	}
	return nil
}

// Create makes the bucket if it does not exist and fails with Exists if a vault config is
// already under the prefix.
func (b *Backend) Create(ctx context.Context) error {
	const op = "s3.Create"
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Canceled, err)
	}
	ok, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return b.classify(ctx, op, backend.Handle{}, err)
	}
	if !ok {
		err := b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{})
		if code := toErrorResponse(err).Code; err != nil && code != "BucketAlreadyOwnedByYou" {
			e := b.classify(ctx, op, backend.Handle{}, err)
			if code == "BucketAlreadyExists" {
				return errs.E(op, errs.Conflict, e).
					WithHint("bucket names are global on this service; the name is taken by another account, choose another")
			}
			return e
		}
	}
	_, err = b.Stat(ctx, backend.Handle{Type: backend.Config})
	switch {
	case err == nil:
		return errs.Errorf(op, errs.Exists, "a vault already exists at %s", b.loc).
			WithHint("use the existing vault, or choose another bucket or prefix for a new one")
	case errs.Is(err, errs.NotFound):
		return nil
	}
	return err
}

func toErrorResponse(err error) minio.ErrorResponse {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp
	}
	return minio.ErrorResponse{}
}

// classify maps a client error to a Kind by S3 error code and transport condition, never by
// message text. Messages name the handle and location, never credentials.
func (b *Backend) classify(ctx context.Context, op string, h backend.Handle, err error) error {
	what := b.loc
	if h.Type != 0 {
		what = h.String() + " at " + b.loc
	}
	wrapped := fmt.Errorf("%s: %w", what, err)
	if ctx.Err() != nil {
		return errs.E(op, errs.Canceled, wrapped)
	}
	var ee *errs.Error
	if errors.As(err, &ee) {
		return err // already classified (from bodyReader)
	}
	resp := toErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NotFound":
		return errs.E(op, errs.NotFound, wrapped)
	case "NoSuchBucket":
		return errs.E(op, errs.NotFound, wrapped).
			WithHint("the bucket does not exist: check the location, or create the vault there first")
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
		return errs.E(op, errs.Unauthorized, wrapped).
			WithHint("check the S3 access key, secret key and the permissions granted on the bucket")
	case "InvalidRange", "InvalidArgument", "InvalidBucketName", "KeyTooLongError":
		return errs.E(op, errs.Invalid, wrapped)
	case "BadDigest", "IncompleteBody", "XAmzContentSHA256Mismatch", "InvalidDigest":
		// The body was damaged on the way: sending it again may well succeed.
		return errs.E(op, errs.Unavailable, wrapped)
	case "RequestTimeTooSkewed":
		return errs.E(op, errs.Unauthorized, wrapped).
			WithHint("the clock of this machine differs from the S3 server's: fix the time (NTP)")
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
		"OperationAborted", "RequestLimitExceeded", "ThrottlingException":
		return errs.E(op, errs.Unavailable, wrapped)
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return errs.E(op, errs.Unavailable, wrapped)
	case resp.StatusCode == http.StatusNotFound:
		return errs.E(op, errs.NotFound, wrapped)
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return errs.E(op, errs.Unauthorized, wrapped).
			WithHint("check the S3 access key, secret key and the permissions granted on the bucket")
	case resp.StatusCode != 0:
		return errs.E(op, errs.Other, wrapped)
	}
	// Not an S3 answer: the transport failed.
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// A deadline of the client or of a decorator's watchdog, not the caller's ctx.
		return errs.E(op, errs.Unavailable, wrapped)
	case errors.As(err, &netErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return errs.E(op, errs.Unavailable, wrapped).
			WithHint("the S3 service at " + b.loc + " could not be reached; check the network and endpoint, or retry later")
	}
	return errs.E(op, errs.Other, wrapped)
}
