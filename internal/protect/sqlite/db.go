package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/rewind-dr/rewind/internal/errs"
)

// DefaultBusyTimeout is how long Rewind's connections wait for a lock the application holds.
const DefaultBusyTimeout = 5 * time.Second

// dsn returns a database/sql name for the file at path with extra query parameters.
func dsn(path string, query string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: query}
	return u.String()
}

// handle is Rewind's set of connections to a protected database. reader, while set, holds a
// read transaction: SQLite then neither checkpoints frames past its snapshot nor restarts the
// WAL, so frames Rewind has not shipped cannot be overwritten.
type handle struct {
	path   string
	wal    string
	db     *sql.DB
	reader *sql.Conn
}

func openHandle(ctx context.Context, op, path string, busy time.Duration) (*handle, error) {
	if path == "" {
		return nil, errs.Errorf(op, errs.Invalid, "no database path").WithHint("name the SQLite database file, e.g. sqlite:///srv/app/app.db")
	}
	st, err := os.Stat(path)
	if err != nil {
		kind := errs.Invalid
		if errors.Is(err, os.ErrNotExist) {
			kind = errs.NotFound
		}
		return nil, errs.E(op, kind, fmt.Errorf("database %s: %w", path, err)).WithHint("check the path of the SQLite database")
	}
	if !st.Mode().IsRegular() {
		return nil, errs.Errorf(op, errs.Invalid, "database %s is not a regular file", path)
	}
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	db, err := sql.Open("sqlite", dsn(path, fmt.Sprintf("mode=rw&_pragma=busy_timeout(%d)", busy.Milliseconds())))
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	h := &handle{path: path, wal: path + "-wal", db: db}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("database %s: %w", path, err)).WithHint("is this an SQLite database that Rewind may read and lock?")
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, errs.Errorf(op, errs.Invalid, "database %s is in journal mode %q, not WAL", path, mode).
			WithHint("switch it once with: sqlite3 " + path + " 'PRAGMA journal_mode=WAL'")
	}
	return h, nil
}

func (h *handle) close() error {
	if h.reader != nil {
		h.releaseReader()
	}
	return h.db.Close()
}

// acquireReader starts a new read transaction and then ends the previous one, so that at
// every moment one is held.
func (h *handle) acquireReader(ctx context.Context) error {
	c, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		c.Close()
		return err
	}
	var n int
	if err := c.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		c.ExecContext(context.Background(), "ROLLBACK")
		c.Close()
		return err
	}
	h.releaseReader()
	h.reader = c
	return nil
}

func (h *handle) releaseReader() {
	if h.reader == nil {
		return
	}
	h.reader.ExecContext(context.Background(), "ROLLBACK")
	h.reader.Close()
	h.reader = nil
}

// lockWrites takes the database's write lock on a new connection (BEGIN IMMEDIATE): while it
// is held no frame is appended to the WAL. unlock releases it.
func (h *handle) lockWrites(ctx context.Context) (unlock func(), err error) {
	c, err := h.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		c.Close()
		return nil, err
	}
	return func() {
		c.ExecContext(context.Background(), "ROLLBACK")
		c.Close()
	}, nil
}

// header reads the current WAL header; errNoWAL (wrapped) when there is none.
func (h *handle) header() (walHeader, error) {
	f, err := os.Open(h.wal)
	if errors.Is(err, os.ErrNotExist) {
		return walHeader{}, fmt.Errorf("%w: no -wal file", errNoWAL)
	}
	if err != nil {
		return walHeader{}, err
	}
	defer f.Close()
	var b [walHeaderSize]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return walHeader{}, err
	}
	return parseWALHeader(b[:n])
}

// scan reads the current WAL generation from its first frame, up to frame limit (0: all
// committed frames), and returns the position after the last complete commit and, for each
// page, the last committed frame holding it.
func (h *handle) scan(limit uint32) (position, map[uint32]uint32, error) {
	idx := map[uint32]uint32{}
	hdr, err := h.header()
	if errors.Is(err, errNoWAL) {
		return position{}, idx, nil
	}
	if err != nil {
		return position{}, nil, err
	}
	pos := startOf(hdr, 0)
	f, err := os.Open(h.wal)
	if err != nil {
		return position{}, nil, err
	}
	defer f.Close()
	if _, err := f.Seek(walHeaderSize, io.SeekStart); err != nil {
		return position{}, nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]byte, walFrameHeaderSize+pos.PageSize)
	sum, frame := pos.Sum, uint32(0)
	var txn []uint32 // pages of the transaction being read
	for limit == 0 || frame < limit {
		if _, err := io.ReadFull(r, buf); err != nil {
			break
		}
		if binary.BigEndian.Uint32(buf[8:]) != pos.Salt1 || binary.BigEndian.Uint32(buf[12:]) != pos.Salt2 {
			break
		}
		pgno := binary.BigEndian.Uint32(buf)
		s := walChecksum(pos.BigEndian, sum, buf[:8])
		s = walChecksum(pos.BigEndian, s, buf[walFrameHeaderSize:])
		if pgno == 0 || s[0] != binary.BigEndian.Uint32(buf[16:]) || s[1] != binary.BigEndian.Uint32(buf[20:]) {
			break
		}
		sum = s
		frame++
		txn = append(txn, pgno)
		if pages := binary.BigEndian.Uint32(buf[4:]); pages != 0 {
			first := frame - uint32(len(txn)) + 1
			for i, p := range txn {
				idx[p] = first + uint32(i)
			}
			txn = txn[:0]
			pos.Frame, pos.Sum, pos.DBPages = frame, sum, pages
		}
	}
	return pos, idx, nil
}

// pageReader streams pages 1..n of the database state pinned by the held reader: a page's
// last committed frame in the WAL (up to the pinned position) or else the database file.
type pageReader struct {
	db, wal *os.File
	idx     map[uint32]uint32
	ps      uint32
	n       uint32
	next    uint32 // next page, 1-based
	buf     []byte
	off     int
}

func newPageReader(h *handle, pos position, idx map[uint32]uint32) (*pageReader, error) {
	db, err := os.Open(h.path)
	if err != nil {
		return nil, err
	}
	pr := &pageReader{db: db, idx: idx, ps: pos.PageSize, n: pos.DBPages, next: 1}
	if len(idx) > 0 {
		if pr.wal, err = os.Open(h.wal); err != nil {
			db.Close()
			return nil, err
		}
	}
	pr.buf = make([]byte, pr.ps)
	pr.off = len(pr.buf)
	return pr, nil
}

func (pr *pageReader) Close() {
	pr.db.Close()
	if pr.wal != nil {
		pr.wal.Close()
	}
}

func (pr *pageReader) Read(p []byte) (int, error) {
	if pr.off == len(pr.buf) {
		if pr.next > pr.n {
			return 0, io.EOF
		}
		var err error
		if f, ok := pr.idx[pr.next]; ok {
			_, err = pr.wal.ReadAt(pr.buf, frameAt(f, pr.ps)+walFrameHeaderSize)
		} else {
			_, err = pr.db.ReadAt(pr.buf, int64(pr.next-1)*int64(pr.ps))
		}
		if err != nil {
			return 0, fmt.Errorf("page %d: %w", pr.next, err)
		}
		pr.next++
		pr.off = 0
	}
	n := copy(p, pr.buf[pr.off:])
	pr.off += n
	return n, nil
}

// pin takes the write lock, reads the WAL to its end, starts a read transaction at exactly
// that state and releases the write lock. It returns the position of the pinned state and the
// page index of its WAL frames.
func (h *handle) pin(ctx context.Context) (position, map[uint32]uint32, error) {
	unlock, err := h.lockWrites(ctx)
	if err != nil {
		return position{}, nil, err
	}
	defer unlock()
	return h.pinLocked(ctx)
}

// pinLocked is pin for a caller that holds the write lock.
func (h *handle) pinLocked(ctx context.Context) (position, map[uint32]uint32, error) {
	pos, idx, err := h.scan(0)
	if err != nil {
		return position{}, nil, err
	}
	var pageSize, pages uint32
	if err := h.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return position{}, nil, err
	}
	if err := h.acquireReader(ctx); err != nil {
		return position{}, nil, err
	}
	if err := h.reader.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return position{}, nil, err
	}
	if pos.HasHeader && pos.PageSize != pageSize {
		return position{}, nil, fmt.Errorf("WAL page size %d differs from the database's %d", pos.PageSize, pageSize)
	}
	if pos.Frame > 0 && pos.DBPages != pages {
		return position{}, nil, fmt.Errorf("WAL ends with a database of %d pages but SQLite reports %d (frames not yet visible); retry", pos.DBPages, pages)
	}
	pos.PageSize, pos.DBPages = pageSize, pages
	return pos, idx, nil
}
