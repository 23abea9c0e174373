package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Point kinds written by this package.
const (
	// KindSnapshot is a consistent copy of the database file (its pages) at one WAL position.
	KindSnapshot = "sqlite-snapshot"
	// KindWAL is a batch of committed WAL frames of one WAL generation, following its parent
	// point (a snapshot or the previous sqlite-wal point of the same chain).
	KindWAL = "sqlite-wal"
)

// Names of the single file in each point's tree.
const (
	snapshotFile = "db"
	segmentFile  = "wal"
)

// Vault is what this plugin needs of a vault. *vault.Repository satisfies it through
// FromVault. Its methods are safe for concurrent use.
type Vault interface {
	files.Store
	// Flush makes every blob saved so far durable and indexed. Errors: errs.Unavailable,
	// errs.Canceled.
	Flush(ctx context.Context) error
	// SavePoint writes a point manifest whose root was flushed. Errors: errs.Invalid,
	// errs.Internal (root not flushed), errs.Locked (lease lost), errs.Unavailable.
	SavePoint(ctx context.Context, p *vault.Point) (vault.ID, error)
	// Points lists every point, oldest first. Errors: errs.Corrupt, errs.Unavailable.
	Points(ctx context.Context) ([]*vault.Point, error)
}

// FromVault adapts an open vault to Vault.
func FromVault(r *vault.Repository) Vault {
	return repoVault{Store: files.FromVault(r), r: r}
}

type repoVault struct {
	files.Store
	r *vault.Repository
}

func (v repoVault) Flush(ctx context.Context) error { return v.r.Flush(ctx) }
func (v repoVault) SavePoint(ctx context.Context, p *vault.Point) (vault.ID, error) {
	return v.r.SavePoint(ctx, p)
}
func (v repoVault) Points(ctx context.Context) ([]*vault.Point, error) { return v.r.Points(ctx) }

// Meta keys of sqlite-snapshot and sqlite-wal points. The wal_* keys and db_pages describe
// the position at the end of the point's content.
const (
	MetaPageSize    = "page_size"    // database page size in bytes
	MetaDBPages     = "db_pages"     // database size in pages
	MetaWALHeader   = "wal_header"   // "1" when the -wal file had a valid header, "0" when empty
	MetaWALOrder    = "wal_order"    // checksum word order: "le" or "be"
	MetaWALCkpt     = "wal_ckpt"     // WAL checkpoint sequence number (decimal)
	MetaWALSalt1    = "wal_salt1"    // WAL salt-1 (8 hex digits)
	MetaWALSalt2    = "wal_salt2"    // WAL salt-2 (8 hex digits)
	MetaWALFrame    = "wal_frame"    // frames of that generation included (decimal)
	MetaWALChecksum = "wal_checksum" // running WAL checksum after that frame (16 hex digits)
	MetaSnapshot    = "snapshot"     // sqlite-wal: ID of the chain's snapshot point
	MetaSeq         = "seq"          // sqlite-wal: 1 for the first point after the snapshot, then 2, 3...
	MetaCommits     = "commits"      // sqlite-wal: number of transactions in the segment
)

func (p position) meta(m map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[MetaPageSize] = strconv.FormatUint(uint64(p.PageSize), 10)
	m[MetaDBPages] = strconv.FormatUint(uint64(p.DBPages), 10)
	m[MetaWALHeader] = "0"
	if p.HasHeader {
		m[MetaWALHeader] = "1"
	}
	m[MetaWALOrder] = "le"
	if p.BigEndian {
		m[MetaWALOrder] = "be"
	}
	m[MetaWALCkpt] = strconv.FormatUint(uint64(p.Ckpt), 10)
	m[MetaWALSalt1] = fmt.Sprintf("%08x", p.Salt1)
	m[MetaWALSalt2] = fmt.Sprintf("%08x", p.Salt2)
	m[MetaWALFrame] = strconv.FormatUint(uint64(p.Frame), 10)
	m[MetaWALChecksum] = fmt.Sprintf("%08x%08x", p.Sum[0], p.Sum[1])
	return m
}

func parseU32(m map[string]string, key string, base int) (uint32, error) {
	s, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("meta %q missing", key)
	}
	n, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, fmt.Errorf("meta %q: %v", key, err)
	}
	return uint32(n), nil
}

// positionFromMeta decodes the end position recorded in a point.
func positionFromMeta(m map[string]string) (position, error) {
	var p position
	var err error
	if p.PageSize, err = parseU32(m, MetaPageSize, 10); err != nil {
		return p, err
	}
	if !validPageSize(p.PageSize) {
		return p, fmt.Errorf("meta %q: invalid page size %d", MetaPageSize, p.PageSize)
	}
	if p.DBPages, err = parseU32(m, MetaDBPages, 10); err != nil {
		return p, err
	}
	p.HasHeader = m[MetaWALHeader] == "1"
	switch m[MetaWALOrder] {
	case "le":
	case "be":
		p.BigEndian = true
	default:
		return p, fmt.Errorf("meta %q: want le or be, got %q", MetaWALOrder, m[MetaWALOrder])
	}
	if p.Ckpt, err = parseU32(m, MetaWALCkpt, 10); err != nil {
		return p, err
	}
	if p.Salt1, err = parseU32(m, MetaWALSalt1, 16); err != nil {
		return p, err
	}
	if p.Salt2, err = parseU32(m, MetaWALSalt2, 16); err != nil {
		return p, err
	}
	if p.Frame, err = parseU32(m, MetaWALFrame, 10); err != nil {
		return p, err
	}
	cs := m[MetaWALChecksum]
	if len(cs) != 16 {
		return p, fmt.Errorf("meta %q: want 16 hex digits, got %q", MetaWALChecksum, cs)
	}
	a, err1 := strconv.ParseUint(cs[:8], 16, 32)
	b, err2 := strconv.ParseUint(cs[8:], 16, 32)
	if err1 != nil || err2 != nil {
		return p, fmt.Errorf("meta %q: not hex: %q", MetaWALChecksum, cs)
	}
	p.Sum = [2]uint32{uint32(a), uint32(b)}
	return p, nil
}
