package mysql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strconv"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Point kinds written by this plugin.
const (
	// KindDump is a logical backup: a tree with one file, DumpFile, the output of
	// mariadb-dump taken in one consistent snapshot, with the binlog position of that
	// snapshot in its meta.
	KindDump = "mysql-dump"
	// KindPhysical is a physical backup: a tree with one file, PhysicalFile, the xbstream
	// archive written by mariadb-backup --backup --stream=xbstream.
	KindPhysical = "mysql-physical"
	// KindBinlog is a piece of one binary log file: a tree with one file named as the
	// binlog file, holding the file's bytes [start_pos, end_pos).
	KindBinlog = "mysql-binlog"
)

// Names of the single file in the trees of dump and physical points.
const (
	DumpFile     = "dump.sql"
	PhysicalFile = "backup.xbstream"
)

// Meta keys (see docs/resources/mysql.md).
const (
	MetaBinlogFile    = "binlog_file"     // dump, physical, binlog: the binary log file
	MetaBinlogPos     = "binlog_pos"      // dump, physical: the snapshot's position in binlog_file
	MetaGTID          = "gtid"            // dump, physical: the snapshot's GTID position (gtid_slave_pos form)
	MetaStartPos      = "start_pos"       // binlog: first byte stored (decimal)
	MetaEndPos        = "end_pos"         // binlog: end of the bytes stored (exclusive)
	MetaNextFile      = "next_file"       // binlog: set when the piece ends the file: the file after it
	MetaChecksum      = "binlog_checksum" // binlog: "crc32" or "none" (every event was verified)
	MetaEvents        = "events"          // binlog: number of events in the piece
	MetaServerID      = "server_id"       // the source's server_id
	MetaServerVersion = "server_version"  // the source's version string
	MetaSHA256        = "sha256"          // dump, physical, binlog: SHA-256 of the stored file (hex)
	MetaBytes         = "bytes"           // size of the stored file
	MetaSource        = "source"          // the server address (host:port or socket)
)

// Vault is what this plugin needs of a vault. *vault.Repository satisfies it through
// FromVault. Its methods are safe for concurrent use.
type Vault interface {
	files.Store
	// Flush makes every blob saved so far durable and indexed. Errors: errs.Unavailable,
	// errs.Canceled.
	Flush(ctx context.Context) error
	// SavePoint writes a point whose root was flushed. Errors: errs.Invalid,
	// errs.Internal (root not flushed), errs.Locked (lease lost), errs.Unavailable.
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

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n uint64
}

func newHashingReader(r io.Reader) *hashingReader { return &hashingReader{r: r, h: sha256.New()} }

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += uint64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// nodeReader reads the content of a point's single file, verifying its size and SHA-256
// against the point's meta at the end.
type nodeReader struct {
	ctx  context.Context
	v    Vault
	op   string
	p    *vault.Point
	node *vault.Node
	i    int
	buf  []byte
	cur  []byte
	n    uint64
	h    hash.Hash
}

// openFile finds name in p's tree and returns a verifying reader of it. Errors:
// errs.Corrupt (missing file, meta without checksum), the vault's errors.
func openFile(ctx context.Context, v Vault, op string, p *vault.Point, name string) (*nodeReader, error) {
	node, err := files.Find(ctx, v, p.Root, name)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("point %s (%s): %w", p.ID.Short(), p.Kind, err))
	}
	if node.Type != vault.NodeFile {
		return nil, errs.Errorf(op, errs.Corrupt, "point %s (%s): %s is not a file", p.ID.Short(), p.Kind, name)
	}
	if len(p.Meta[MetaSHA256]) != 64 {
		return nil, errs.Errorf(op, errs.Corrupt, "point %s (%s): meta %q is missing", p.ID.Short(), p.Kind, MetaSHA256).
			WithHint("the point was not written by this plugin; take a new backup")
	}
	return &nodeReader{ctx: ctx, v: v, op: op, p: p, node: node, h: sha256.New()}, nil
}

func (r *nodeReader) Read(b []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.i == len(r.node.Content) {
			return 0, r.verify()
		}
		data, err := r.v.LoadBlob(r.ctx, vault.DataBlob, r.node.Content[r.i], r.buf)
		if err != nil {
			return 0, errs.E(r.op, errs.KindOf(err), fmt.Errorf("point %s: %s: blob %d of %d: %w",
				r.p.ID.Short(), r.node.Name, r.i+1, len(r.node.Content), err))
		}
		r.i++
		r.buf, r.cur = data, data
		r.n += uint64(len(data))
		r.h.Write(data)
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *nodeReader) verify() error {
	want := r.p.Meta[MetaSHA256]
	got := hex.EncodeToString(r.h.Sum(nil))
	if r.n != r.node.Size || strconv.FormatUint(r.n, 10) != r.p.Meta[MetaBytes] || got != want {
		return errs.Errorf(r.op, errs.Corrupt, "point %s: %s: read %d bytes with SHA-256 %s; the point recorded %s bytes with %s",
			r.p.ID.Short(), r.node.Name, r.n, got, r.p.Meta[MetaBytes], want).
			WithHint("the vault is damaged; run a vault check")
	}
	return io.EOF
}

// metaUint reads a decimal meta value.
func metaUint(p *vault.Point, key string) (uint64, error) {
	s, ok := p.Meta[key]
	if !ok {
		return 0, fmt.Errorf("point %s (%s): meta %q is missing", p.ID.Short(), p.Kind, key)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("point %s (%s): meta %q = %q is not a number", p.ID.Short(), p.Kind, key, s)
	}
	return n, nil
}
