package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault/backend"
)

func TestClassify(t *testing.T) {
	b := &Backend{loc: "s3://h/b"}
	h := backend.Handle{Type: backend.Pack, Name: "ab12"}
	canceledCtx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := func(code string, status int) error {
		return minio.ErrorResponse{Code: code, StatusCode: status}
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want errs.Kind
	}{
		{"NoSuchKey", nil, resp("NoSuchKey", 404), errs.NotFound},
		{"NotFound HEAD", nil, resp("NotFound", 404), errs.NotFound},
		{"bare 404", nil, resp("", 404), errs.NotFound},
		{"NoSuchBucket", nil, resp("NoSuchBucket", 404), errs.NotFound},
		{"AccessDenied", nil, resp("AccessDenied", 403), errs.Unauthorized},
		{"InvalidAccessKeyId", nil, resp("InvalidAccessKeyId", 403), errs.Unauthorized},
		{"SignatureDoesNotMatch", nil, resp("SignatureDoesNotMatch", 403), errs.Unauthorized},
		{"bare 403", nil, resp("", 403), errs.Unauthorized},
		{"SlowDown", nil, resp("SlowDown", 503), errs.Unavailable},
		{"RequestTimeout", nil, resp("RequestTimeout", 400), errs.Unavailable},
		{"InternalError", nil, resp("InternalError", 500), errs.Unavailable},
		{"bare 502", nil, resp("", 502), errs.Unavailable},
		{"429", nil, resp("", 429), errs.Unavailable},
		{"BadDigest", nil, resp("BadDigest", 400), errs.Unavailable},
		{"InvalidRange", nil, resp("InvalidRange", 416), errs.Invalid},
		{"other 400", nil, resp("MalformedXML", 400), errs.Other},
		{"wrapped response", nil, fmt.Errorf("x: %w", resp("NoSuchKey", 404)), errs.NotFound},
		{"net error", nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, errs.Unavailable},
		{"unexpected EOF", nil, io.ErrUnexpectedEOF, errs.Unavailable},
		{"deadline (not caller's)", nil, context.DeadlineExceeded, errs.Unavailable},
		{"caller canceled", canceledCtx, &net.OpError{Op: "read", Err: context.Canceled}, errs.Canceled},
		{"unknown", nil, errors.New("strange"), errs.Other},
	} {
		ctx := c.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		err := b.classify(ctx, "s3.Test", h, c.err)
		if got := errs.KindOf(err); got != c.want {
			t.Errorf("%s: kind %v (%v), want %v", c.name, got, err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s: cause not kept in the chain", c.name)
		}
	}
}

func TestRangeLength(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, c := range []struct {
		name           string
		h              http.Header
		offset, length int64
		ranged         bool
		want           int64
		bad            bool
	}{
		{"whole", hdr("Content-Length", "100"), 0, 0, false, 100, false},
		{"range inside", hdr("Content-Range", "bytes 10-19/100", "Content-Length", "10"), 10, 10, true, 10, false},
		{"range to end", hdr("Content-Range", "bytes 10-99/100"), 10, 0, true, 90, false},
		{"range past end", hdr("Content-Range", "bytes 95-99/100"), 95, 10, true, 0, true},
		{"range ignored", hdr("Content-Length", "100"), 10, 10, true, 10, false},
		{"range ignored past end", hdr("Content-Length", "100"), 95, 10, true, 0, true},
		{"malformed", hdr("Content-Range", "bytes 1-2/x"), 1, 2, true, 0, true},
		{"no length", hdr(), 0, 0, false, 0, true},
		{"negative length", hdr("Content-Length", "-5"), 0, 0, false, 0, true},
		{"negative total", hdr("Content-Range", "bytes 0-1/-2"), 0, 2, true, 0, true},
		{"huge range", hdr("Content-Range", "bytes 1-1/100"), 1, 1<<63 - 1, true, 0, true},
	} {
		got, err := rangeLength(c.h, c.offset, c.length, c.ranged)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%s: rangeLength = %d, %v; want %d, error %v", c.name, got, err, c.want, c.bad)
		}
	}
}

func FuzzRangeLength(f *testing.F) {
	f.Add("bytes 0-9/100", "10", int64(0), int64(10))
	f.Add("", "100", int64(5), int64(0))
	f.Add("", "100", int64(0), int64(0))
	f.Add("bytes */100", "", int64(200), int64(0))
	f.Fuzz(func(t *testing.T, contentRange, contentLength string, offset, length int64) {
		if offset < 0 || length < 0 {
			return // Load rejects these before asking the server
		}
		ranged := offset > 0 || length > 0 // as Load computes it
		h := http.Header{}
		if contentRange != "" {
			h.Set("Content-Range", contentRange)
		}
		h.Set("Content-Length", contentLength)
		n, err := rangeLength(h, offset, length, ranged)
		if err != nil {
			return
		}
		if n < 0 || (length > 0 && n != length) {
			t.Fatalf("rangeLength(%q, %q, %d, %d) = %d", contentRange, contentLength, offset, length, n)
		}
	})
}
