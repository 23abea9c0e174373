package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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
//
// POSIX advisory locks belong to a process and an inode, and closing any descriptor of a
// file releases every lock the process holds on it. SQLite's connections hold such locks on
// the database (SHARED, which tells the other processes that it is still open) and on the
// -shm file (read marks). Rewind therefore never opens a descriptor of its own on the
// database or the -shm file: it reads pages through SQLite (sqlite_dbpage) and the WAL
// through wal, a descriptor opened once when the connections are up and closed only after
// them. (SQLite takes no lock on the -wal file itself.) Were the SHARED lock dropped, the
// last connection of another process to close would take the database for its own,
// checkpoint the WAL into it and delete it, and the commits it held would never be seen.
type handle struct {
	path    string
	walPath string
	db      *sql.DB
	reader  *sql.Conn
	wal     *os.File    // the -wal file, read with ReadAt only
	walInfo os.FileInfo // identity of wal, to notice a -wal file deleted or replaced
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
	h := &handle{path: path, walPath: path + "-wal", db: db}
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
	// A read opens the WAL (SQLite creates the -wal file if there is none); from then on the
	// pool's idle connection keeps the database open, so no other process deletes it.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		db.Close()
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("database %s: %w", path, err)).WithHint("the application may hold the database locked; retry")
	}
	if h.wal, err = os.Open(h.walPath); err == nil {
		h.walInfo, err = h.wal.Stat()
	}
	if err != nil {
		h.close()
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("WAL of %s: %w", path, err)).WithHint("Rewind needs to read the -wal file next to the database")
	}
	return h, nil
}

// close ends the read transaction and closes the connections, then the -wal descriptor.
// It may be called again.
func (h *handle) close() error {
	if h.reader != nil {
		h.releaseReader()
	}
	var err error
	if h.db != nil {
		err = h.db.Close()
		h.db = nil
	}
	if h.wal != nil {
		if cerr := h.wal.Close(); err == nil {
			err = cerr
		}
		h.wal = nil
	}
	return err
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

// errWALReplaced says the -wal file Rewind reads is no longer the one at its path: SQLite
// deleted it (another process checkpointed the database believing it was the last to have
// it open) or someone replaced it. Commits may have bypassed Rewind.
var errWALReplaced = errors.New("the -wal file was deleted or replaced")

// walReplaced returns errWALReplaced (wrapped) when the -wal path no longer names the file
// Rewind holds open. It only stats the path: it opens no descriptor.
func (h *handle) walReplaced() error {
	st, err := os.Stat(h.walPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s is gone", errWALReplaced, h.walPath)
	}
	if err != nil {
		return err
	}
	if !os.SameFile(st, h.walInfo) {
		return fmt.Errorf("%w: %s is another file", errWALReplaced, h.walPath)
	}
	return nil
}

// walFrom returns a reader of the WAL from byte offset off.
func (h *handle) walFrom(off int64) io.Reader {
	return bufio.NewReaderSize(io.NewSectionReader(h.wal, off, math.MaxInt64-off), 1<<20)
}

// header reads the current WAL header; errNoWAL (wrapped) when there is none.
func (h *handle) header() (walHeader, error) {
	var b [walHeaderSize]byte
	n, err := h.wal.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return walHeader{}, err
	}
	return parseWALHeader(b[:n])
}

// scan reads the current WAL generation from its first frame, up to frame limit (0: all
// committed frames), and returns the position after the last complete commit.
func (h *handle) scan(limit uint32) (position, error) {
	hdr, err := h.header()
	if errors.Is(err, errNoWAL) {
		return position{}, nil
	}
	if err != nil {
		return position{}, err
	}
	pos := startOf(hdr, 0)
	r := h.walFrom(walHeaderSize)
	buf := make([]byte, walFrameHeaderSize+pos.PageSize)
	sum, frame := pos.Sum, uint32(0)
	for limit == 0 || frame < limit {
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return position{}, err
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
		if pages := binary.BigEndian.Uint32(buf[4:]); pages != 0 {
			pos.Frame, pos.Sum, pos.DBPages = frame, sum, pages
		}
	}
	return pos, nil
}

// pageReader streams pages 1..n of the database state pinned by the held reader, read
// through SQLite (the sqlite_dbpage table) inside that read transaction: SQLite takes each
// page from the WAL or the database file as its snapshot says.
type pageReader struct {
	rows  *sql.Rows
	ps    uint32
	n     uint32
	next  uint32 // next page, 1-based
	buf   []byte
	off   int
	page1 []byte // a copy of page 1 once read
}

func newPageReader(ctx context.Context, h *handle, pos position) (*pageReader, error) {
	if h.reader == nil {
		return nil, errors.New("no read transaction pins the database")
	}
	rows, err := h.reader.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage")
	if err != nil {
		return nil, err
	}
	pr := &pageReader{rows: rows, ps: pos.PageSize, n: pos.DBPages, next: 1}
	pr.buf = make([]byte, pr.ps)
	pr.off = len(pr.buf)
	return pr, nil
}

func (pr *pageReader) Close() { pr.rows.Close() }

func (pr *pageReader) Read(p []byte) (int, error) {
	if pr.off == len(pr.buf) {
		if !pr.rows.Next() {
			if err := pr.rows.Err(); err != nil {
				return 0, fmt.Errorf("page %d: %w", pr.next, err)
			}
			if pr.next <= pr.n {
				return 0, fmt.Errorf("SQLite returned %d pages, the pinned state has %d", pr.next-1, pr.n)
			}
			return 0, io.EOF
		}
		var pgno int64
		var data sql.RawBytes
		if err := pr.rows.Scan(&pgno, &data); err != nil {
			return 0, fmt.Errorf("page %d: %w", pr.next, err)
		}
		if pgno != int64(pr.next) || pr.next > pr.n || len(data) != len(pr.buf) {
			return 0, fmt.Errorf("SQLite returned page %d of %d bytes, expected page %d of %d bytes (of %d pages)", pgno, len(data), pr.next, len(pr.buf), pr.n)
		}
		copy(pr.buf, data)
		if pr.next == 1 {
			pr.page1 = append([]byte(nil), pr.buf...)
		}
		pr.next++
		pr.off = 0
	}
	n := copy(p, pr.buf[pr.off:])
	pr.off += n
	return n, nil
}

// pin takes the write lock, reads the WAL to its end, starts a read transaction at exactly
// that state and releases the write lock. It returns the position of the pinned state.
func (h *handle) pin(ctx context.Context) (position, error) {
	unlock, err := h.lockWrites(ctx)
	if err != nil {
		return position{}, err
	}
	defer unlock()
	return h.pinLocked(ctx)
}

// pinLocked is pin for a caller that holds the write lock.
func (h *handle) pinLocked(ctx context.Context) (position, error) {
	pos, err := h.scan(0)
	if err != nil {
		return position{}, err
	}
	var pageSize, pages uint32
	if err := h.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return position{}, err
	}
	if err := h.acquireReader(ctx); err != nil {
		return position{}, err
	}
	if err := h.reader.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return position{}, err
	}
	if pos.HasHeader && pos.PageSize != pageSize {
		return position{}, fmt.Errorf("WAL page size %d differs from the database's %d", pos.PageSize, pageSize)
	}
	if pos.Frame > 0 && pos.DBPages != pages {
		return position{}, fmt.Errorf("WAL ends with a database of %d pages but SQLite reports %d (frames not yet visible); retry", pos.DBPages, pages)
	}
	pos.PageSize, pos.DBPages = pageSize, pages
	return pos, nil
}

// pinned returns the size in pages and page 1 of the state the held reader sees.
func (h *handle) pinned(ctx context.Context) (pages uint32, page1 []byte, err error) {
	if err := h.reader.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, nil, err
	}
	if err := h.reader.QueryRowContext(ctx, "SELECT data FROM sqlite_dbpage WHERE pgno = 1").Scan(&page1); err != nil {
		return 0, nil, err
	}
	return pages, page1, nil
}
