package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Point kinds written by this plugin.
const (
	// KindBase is a base backup: a tree with one file node per tablespace tar archive
	// ("base.tar", "<oid>.tar").
	KindBase = vault.KindPostgresBase
	// KindWAL is a piece of the write-ahead log: a tree with one file node per WAL segment
	// touched (holding the bytes of the point's LSN range that fall in that segment), or one
	// timeline history or backup history file.
	KindWAL = "postgres-wal"
)

// Meta keys of the points of this plugin (see docs/resources/postgres.md).
const (
	MetaSystemID    = "system_id"        // the cluster's system identifier (decimal)
	MetaTimeline    = "timeline"         // base: start timeline; wal: the timeline of the bytes
	MetaStartLSN    = "start_lsn"        // base: backup start; wal: first byte
	MetaEndLSN      = "end_lsn"          // base: backup end (consistent point); wal: end (exclusive)
	MetaEndTimeline = "end_timeline"     // base: timeline of the end position
	MetaSegmentSize = "wal_segment_size" // bytes
	MetaPGVersion   = "pg_version"       // server_version_num of the source
	MetaLabel       = "backup_label"     // base: content of the backup_label file
	MetaStartTime   = "start_time"       // base: START TIME of the backup label (RFC 3339)
	MetaEndTime     = "end_time"         // base: when the backup ended (RFC 3339, nanoseconds)
	MetaFromStandby = "from_standby"     // base: "true" when taken from a standby
	MetaSource      = "source"           // wal: "stream" or "archive"
	MetaFile        = "file"             // wal: the name of a history or backup history file
)

// Vault is what the plugin needs from a vault. *vault.Repository satisfies it through
// FromVault.
type Vault interface {
	files.Store
	// SavePoint writes a point manifest; everything under p.Root must have been saved and
	// flushed. Errors: errs.Invalid, errs.Internal (not flushed), errs.Locked (lease lost),
	// errs.Unavailable. Safe for concurrent use; no retries beyond the backend's.
	SavePoint(ctx context.Context, p *vault.Point) (vault.ID, error)
	// Flush makes every blob saved so far durable and indexed. Errors: errs.Unavailable,
	// errs.Canceled. Safe for concurrent use.
	Flush(ctx context.Context) error
	// Points returns every point sorted by time. Errors: errs.Corrupt, errs.Unavailable.
	Points(ctx context.Context) ([]*vault.Point, error)
}

// FromVault adapts an open vault to Vault.
func FromVault(r *vault.Repository) Vault { return repoVault{Store: files.FromVault(r), r: r} }

type repoVault struct {
	files.Store
	r *vault.Repository
}

func (v repoVault) SavePoint(ctx context.Context, p *vault.Point) (vault.ID, error) {
	return v.r.SavePoint(ctx, p)
}
func (v repoVault) Flush(ctx context.Context) error { return v.r.Flush(ctx) }
func (v repoVault) Points(ctx context.Context) ([]*vault.Point, error) {
	return v.r.Points(ctx)
}

// added counts what a save added to the vault.
type added struct {
	blobs, bytes uint64
}

// saveStream chunks rd into data blobs and returns a file node named name holding them.
func saveStream(ctx context.Context, v Vault, name string, rd io.Reader, now time.Time, add *added) (*vault.Node, error) {
	const op = "postgres.save"
	node := &vault.Node{Name: []byte(name), Type: vault.NodeFile, Mode: 0o600,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ModTime: now}
	// The chunker runs here; each chunk is hashed, compressed and sealed by SaveBlob in its
	// own goroutine, a few at a time, so a base backup keeps every core busy while the
	// server streams the next bytes. Content keeps chunk order.
	ch := v.NewChunker(rd)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // guards node.Content, saveErr, add
		saveErr error
		slots   = make(chan struct{}, runtime.GOMAXPROCS(0)+1)
		bufs    = sync.Pool{New: func() any { b := make([]byte, 0, 8<<20); return &b }}
	)
	wait := func() error {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return saveErr
	}
	for {
		buf := bufs.Get().(*[]byte)
		chunk, err := ch.Next((*buf)[:0])
		if err == io.EOF {
			bufs.Put(buf)
			break
		}
		if err != nil {
			if werr := wait(); werr != nil {
				return nil, werr
			}
			if errs.KindOf(err) != errs.Other {
				return nil, err
			}
			return nil, errs.E(op, errs.Unavailable, fmt.Errorf("read %s: %w", name, err))
		}
		mu.Lock()
		i := len(node.Content)
		node.Content = append(node.Content, vault.ID{})
		failed := saveErr != nil
		mu.Unlock()
		if failed {
			break
		}
		node.Size += uint64(len(chunk))
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { *buf = chunk[:0]; bufs.Put(buf); <-slots; wg.Done() }()
			id, isNew, err := v.SaveBlob(ctx, vault.DataBlob, chunk)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if saveErr == nil {
					saveErr = err
				}
				return
			}
			node.Content[i] = id
			if isNew {
				add.blobs++
				add.bytes += uint64(len(chunk))
			}
		}()
	}
	if err := wait(); err != nil {
		return nil, err
	}
	return node, nil
}

// saveTree stores a tree of nodes (sorted here by name).
func saveTree(ctx context.Context, v Vault, nodes []*vault.Node, add *added) (vault.ID, error) {
	sortNodes(nodes)
	b, err := vault.EncodeTree(&vault.Tree{Nodes: nodes})
	if err != nil {
		return vault.ID{}, errs.E("postgres.save", errs.Internal, err)
	}
	id, isNew, err := v.SaveBlob(ctx, vault.TreeBlob, b)
	if isNew {
		add.blobs++
		add.bytes += uint64(len(b))
	}
	return id, err
}

func sortNodes(nodes []*vault.Node) {
	for i := 1; i < len(nodes); i++ {
		for j := i; j > 0 && bytes.Compare(nodes[j-1].Name, nodes[j].Name) > 0; j-- {
			nodes[j-1], nodes[j] = nodes[j], nodes[j-1]
		}
	}
}

// loadTree loads tree id of point p.
func loadTree(ctx context.Context, v Vault, op string, p *vault.Point, id vault.ID) (*vault.Tree, error) {
	b, err := v.LoadBlob(ctx, vault.TreeBlob, id, nil)
	if err != nil {
		return nil, errs.E(op, errs.KindOf(err), fmt.Errorf("point %s: tree %s: %w", p.ID.Short(), id.Short(), err))
	}
	t, err := vault.DecodeTree(b)
	if err != nil {
		return nil, errs.E(op, errs.Corrupt, fmt.Errorf("point %s: tree %s: %w", p.ID.Short(), id.Short(), err)).
			WithHint("the vault is damaged; run a vault check")
	}
	return t, nil
}

// nodeReader reads a file node's content blob by blob, loading the next few blobs ahead in
// their own goroutines (each authenticated and decompressed by the vault), so a restore
// keeps every core busy.
type nodeReader struct {
	ctx     context.Context
	v       Vault
	node    *vault.Node
	i       int           // the next blob to read
	ahead   []chan loaded // loads in flight, for blobs i, i+1, …
	next    int           // the next blob to start loading
	cur     []byte
	n       uint64
	maxLoad int
}

type loaded struct {
	b   []byte
	err error
}

func newNodeReader(ctx context.Context, v Vault, node *vault.Node) *nodeReader {
	return &nodeReader{ctx: ctx, v: v, node: node, maxLoad: 2 * runtime.GOMAXPROCS(0)}
}

func (r *nodeReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.i == len(r.node.Content) {
			if r.n != r.node.Size {
				return 0, errs.Errorf("postgres.read", errs.Corrupt, "%s: content is %d bytes, the node says %d", r.node.Name, r.n, r.node.Size)
			}
			return 0, io.EOF
		}
		for r.next < len(r.node.Content) && len(r.ahead) < r.maxLoad {
			c := make(chan loaded, 1)
			id := r.node.Content[r.next]
			go func() {
				b, err := r.v.LoadBlob(r.ctx, vault.DataBlob, id, nil)
				c <- loaded{b, err}
			}()
			r.ahead = append(r.ahead, c)
			r.next++
		}
		l := <-r.ahead[0]
		r.ahead = r.ahead[1:]
		if l.err != nil {
			return 0, errs.E("postgres.read", errs.KindOf(l.err), fmt.Errorf("%s: blob %d of %d: %w", r.node.Name, r.i+1, len(r.node.Content), l.err))
		}
		r.i++
		r.cur = l.b
		r.n += uint64(len(l.b))
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// readNode returns a file node's whole content.
func readNode(ctx context.Context, v Vault, node *vault.Node) ([]byte, error) {
	out := make([]byte, 0, node.Size)
	buf := bytes.NewBuffer(out)
	_, err := io.Copy(buf, newNodeReader(ctx, v, node))
	return buf.Bytes(), err
}
