package redis

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// KindRDB is the point kind of an RDB snapshot: a tree with one file, RDBFile.
const KindRDB = "redis-rdb"

// RDBFile is the name of the file in a redis-rdb point's tree.
const RDBFile = "dump.rdb"

// Meta keys of redis-rdb points.
const (
	MetaRedisVersion = "redis_version" // the server's version (INFO server)
	MetaRDBVersion   = "rdb_version"   // the RDB format version from its header
	MetaKeys         = "keys"          // keys in all databases (INFO keyspace) when the backup started
	MetaChecksum     = "rdb_crc64"     // the RDB's CRC-64 trailer (16 hex digits; 0 when disabled)
	MetaSource       = "source"        // the server address
)

// Vault is what this plugin needs of a vault. *vault.Repository satisfies it through
// FromVault. Its methods are safe for concurrent use.
type Vault interface {
	files.Store
	// Flush makes saved blobs durable and indexed. Errors: errs.Unavailable, errs.Canceled.
	Flush(ctx context.Context) error
	// SavePoint writes a point whose root was flushed. Errors: errs.Invalid, errs.Internal,
	// errs.Locked, errs.Unavailable.
	SavePoint(ctx context.Context, p *vault.Point) (vault.ID, error)
	// Points lists every point, oldest first. Errors: errs.Corrupt, errs.Unavailable.
	Points(ctx context.Context) ([]*vault.Point, error)
}

// FromVault adapts an open vault to Vault.
func FromVault(r *vault.Repository) Vault { return repoVault{Store: files.FromVault(r), r: r} }

type repoVault struct {
	files.Store
	r *vault.Repository
}

func (v repoVault) Flush(ctx context.Context) error { return v.r.Flush(ctx) }
func (v repoVault) SavePoint(ctx context.Context, p *vault.Point) (vault.ID, error) {
	return v.r.SavePoint(ctx, p)
}
func (v repoVault) Points(ctx context.Context) ([]*vault.Point, error) { return v.r.Points(ctx) }

// BackupOptions configures Backup.
type BackupOptions struct {
	Resource string            // the point's resource (default "redis:" + host:port)
	Host     string            // the point's host (default os.Hostname)
	Tags     map[string]string // the point's tags
	// Diskless announces the "eof" capability, letting the server stream the RDB without
	// writing it to its disk first (if it is configured for diskless sync).
	Diskless bool
	// Timeout bounds the wait for the server to produce the RDB (default 1 hour).
	Timeout time.Duration
	Now     func() time.Time // clock (default time.Now)
}

// Backup reads the RDB of the server at url (redis://[user:password@]host:port) over the
// replication protocol (PSYNC ? -1, then the "$<length>" payload or the diskless "$EOF:<mark>"
// form), verifies it while storing it, and saves a redis-rdb point. The user needs the
// permission to run PSYNC and REPLCONF (the "replica" role in ACL terms).
//
// Errors: errs.Invalid (bad URL), errs.Unauthorized (AUTH or permission refused),
// errs.Unavailable (connection or protocol failure; retryable), errs.Corrupt (the payload
// failed verification: no point is saved), and the vault's kinds.
func Backup(ctx context.Context, v Vault, rawURL string, opts BackupOptions) (*vault.Point, error) {
	const op = "redis.Backup"
	t, err := parseURL(op, rawURL)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Hour
	}
	c, err := dial(ctx, op, t)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Now()) })
	defer stop()
	meta := map[string]string{MetaSource: t.addr}
	info, err := c.do(ctx, "INFO", "server")
	if err != nil {
		return nil, err
	}
	meta[MetaRedisVersion] = infoField(info, "redis_version")
	if ks, err := c.do(ctx, "INFO", "keyspace"); err == nil {
		meta[MetaKeys] = strconv.FormatInt(countKeys(ks), 10)
	}
	if _, err := c.do(ctx, "REPLCONF", "listening-port", "0"); err != nil {
		return nil, err
	}
	if opts.Diskless {
		if _, err := c.do(ctx, "REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
			return nil, err
		}
	}
	started := now().UTC()
	c.deadline(ctx, opts.Timeout)
	if err := c.send("PSYNC", "?", "-1"); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	payload, err := readPayload(op, c)
	if err != nil {
		return nil, err
	}
	var ver Verifier
	res, err := files.BackupStream(ctx, v, io.TeeReader(payload, &ver), RDBFile, files.BackupOptions{Now: func() time.Time { return started }})
	if err != nil {
		if ctx.Err() != nil {
			return nil, errs.E(op, errs.Canceled, ctx.Err())
		}
		return nil, err
	}
	if pe, ok := payload.(interface{ Err() error }); ok && pe.Err() != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("reading the RDB from %s: %w", t.display, pe.Err()))
	}
	rdb, err := ver.Finish()
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("RDB from %s: %w", t.display, err)).WithHint("nothing was saved; retry, and check the server's logs")
	}
	meta[MetaRDBVersion] = strconv.Itoa(rdb.Version)
	meta[MetaChecksum] = fmt.Sprintf("%016x", rdb.Checksum)
	if err := v.Flush(ctx); err != nil {
		return nil, err
	}
	host := opts.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	resource := opts.Resource
	if resource == "" {
		resource = "redis:" + t.addr
	}
	p := &vault.Point{
		Kind: KindRDB, Time: started, Host: host, Resource: resource, Paths: []string{t.display},
		Tags: opts.Tags, Root: res.Root, Meta: meta,
		Summary: vault.Summary{Files: 1, Bytes: uint64(rdb.Size), BlobsAdded: res.Summary.NewBlobs,
			BytesAdded: res.Summary.NewBytes, Duration: now().Sub(started)},
	}
	if _, err := v.SavePoint(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// readPayload reads the PSYNC reply up to the RDB payload and returns a reader of exactly the
// payload. Errors while reading the payload are reported by its Err method.
func readPayload(op string, c *conn) (io.Reader, error) {
	for {
		l, err := c.line()
		if err != nil {
			return nil, errs.E(op, errs.Unavailable, fmt.Errorf("PSYNC: %w", err))
		}
		switch {
		case l == "": // keep-alive newlines while the server prepares the RDB
			continue
		case strings.HasPrefix(l, "+FULLRESYNC"), strings.HasPrefix(l, "+CONTINUE"):
			continue
		case strings.HasPrefix(l, "-"):
			return nil, replyError(op, "PSYNC", l[1:])
		case strings.HasPrefix(l, "$EOF:"):
			mark := []byte(l[5:])
			if len(mark) != 40 {
				return nil, errs.Errorf(op, errs.Unavailable, "PSYNC: bad EOF mark %q", l)
			}
			return &markReader{r: c.r, mark: mark}, nil
		case strings.HasPrefix(l, "$"):
			n, err := strconv.ParseInt(l[1:], 10, 64)
			if err != nil || n < 0 {
				return nil, errs.Errorf(op, errs.Unavailable, "PSYNC: bad payload length %q", l)
			}
			return &lenReader{r: io.LimitReader(c.r, n), left: n}, nil
		default:
			return nil, errs.Errorf(op, errs.Unavailable, "PSYNC: unexpected reply %q", l)
		}
	}
}

// lenReader reads exactly left bytes; a short read is an error (Err), not a silent EOF.
type lenReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *lenReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		l.err = fmt.Errorf("connection ended %d bytes before the end of the RDB", l.left)
		return n, l.err
	}
	return n, err
}

func (l *lenReader) Err() error { return l.err }

// markReader reads a diskless payload that ends with a 40-byte mark, holding back the last 40
// bytes until it knows whether they are the mark.
type markReader struct {
	r    *bufio.Reader
	mark []byte
	buf  []byte // bytes read but not yet returned (at most the last 40 are held back)
	done bool
	err  error
}

func (m *markReader) Read(p []byte) (int, error) {
	for {
		if m.done {
			if len(m.buf) == 0 {
				return 0, io.EOF
			}
			n := copy(p, m.buf)
			m.buf = m.buf[n:]
			return n, nil
		}
		if len(m.buf) > len(m.mark) {
			n := copy(p, m.buf[:len(m.buf)-len(m.mark)])
			m.buf = m.buf[n:]
			return n, nil
		}
		chunk := make([]byte, 32<<10)
		n, err := m.r.Read(chunk)
		m.buf = append(m.buf, chunk[:n]...)
		// The replication stream goes on after the mark (pings, REPLCONF GETACK), so the mark
		// may be anywhere in the new bytes; it is 40 random characters, not RDB content.
		if i := bytes.Index(m.buf, m.mark); i >= 0 {
			m.buf = m.buf[:i]
			m.done = true
			continue
		}
		if err != nil {
			m.err = fmt.Errorf("connection ended before the RDB's end mark: %w", err)
			return 0, m.err
		}
	}
}

func (m *markReader) Err() error { return m.err }

func infoField(info, key string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == key {
			return v
		}
	}
	return ""
}

// countKeys sums keys=N over the "dbN:keys=..,expires=.." lines of INFO keyspace.
func countKeys(info string) int64 {
	var n int64
	for _, l := range strings.Split(info, "\n") {
		_, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || !strings.HasPrefix(l, "db") {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			if k, x, ok := strings.Cut(kv, "="); ok && k == "keys" {
				c, _ := strconv.ParseInt(x, 10, 64)
				n += c
			}
		}
	}
	return n
}
