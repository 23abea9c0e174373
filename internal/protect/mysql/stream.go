package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// StreamOptions configures Stream and OpenStream.
type StreamOptions struct {
	Resource string            // the points' resource (default "mysql:" + host:port or socket, as Backup)
	Host     string            // the points' host (default os.Hostname)
	Tags     map[string]string // the points' tags
	// FlushEvery is how often Stream stores what arrived (default 1 s).
	FlushEvery time.Duration
	// CatchUp is how long a flush waits for the local copy to reach the position the
	// server reported at its start (default 5 s); past it, the flush stores what arrived.
	CatchUp time.Duration
	// MaxPending bounds the bytes one flush holds in memory before storing them
	// (default 64 MiB).
	MaxPending int
	Now        func() time.Time // clock (default time.Now); dates the points
}

// Streamer ships one server's binary log into the vault. It is made by OpenStream and
// used by one goroutine.
type Streamer struct {
	op   string
	v    Vault
	srv  server
	db   *sql.DB
	opts StreamOptions
	info info

	cred   *credentials
	dir    string // where mariadb-binlog writes the files
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan error
	stderr *tail

	cur    *fileScanner // the file being shipped; cur.off is what the vault holds of it
	skip   uint64       // when resuming inside cur: the vault holds cur's bytes up to skip
	parent *vault.ID
}

// Position is a place in the binary log.
type Position struct {
	File string
	Pos  uint64
}

func (p Position) String() string { return describePos(p.File, p.Pos) }

// OpenStream prepares shipping the binary log of the server at url and starts
// mariadb-binlog --read-from-remote-server --raw --stop-never, which copies the server's
// binlog files into a private temporary directory as they grow. Shipping continues where
// the vault's binlog of the resource ends, or, when the newest backup is later than that,
// from the start of the backup's binlog file (files are always stored from their first
// byte, so each file's format description is in the vault). The process runs until Close.
//
// Errors: errs.Invalid (URL), errs.Unauthorized, errs.NotFound (no backup of the resource
// to start from; or the server no longer has the binlog file where the vault's ends — a
// gap, named with its file and position: take a new backup), errs.Conflict (the binary log
// is off), errs.Unavailable (server or mariadb-binlog), and the vault's errors.
func OpenStream(ctx context.Context, v Vault, url string, opts StreamOptions) (*Streamer, error) {
	const op = "mysql.Stream"
	srv, err := parseURL(op, url)
	if err != nil {
		return nil, err
	}
	if opts.Resource == "" {
		opts.Resource = "mysql:" + srv.addr()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = time.Second
	}
	if opts.CatchUp <= 0 {
		opts.CatchUp = 5 * time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 64 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := loadCatalog(ctx, v, op, opts.Resource)
	if err != nil {
		return nil, err
	}
	if len(c.bases) == 0 {
		return nil, errs.Errorf(op, errs.NotFound, "no MySQL backup of resource %q to stream the binlog from", opts.Resource).
			WithHint("take a backup first ('rewind backup'), then start streaming")
	}
	base := c.bases[len(c.bases)-1]
	start := Position{File: base.Meta[MetaBinlogFile]}
	if n := c.newest; n != nil && comparePos(n.file, n.end, start.File, 0) >= 0 {
		start = Position{File: n.file, Pos: n.end}
		if n.next != "" {
			start = Position{File: n.next}
		}
	}
	db, err := srv.open(ctx, op)
	if err != nil {
		return nil, err
	}
	st := &Streamer{op: op, v: v, srv: srv, db: db, opts: opts, cur: newFileScanner(start.File)}
	if c.newest != nil {
		id := c.newest.p.ID
		st.parent = &id
	}
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	if st.info, err = serverInfo(ctx, op, srv, db); err != nil {
		return nil, err
	}
	if !st.info.logBin {
		return nil, errs.Errorf(op, errs.Conflict, "%s has its binary log off", srv.display).
			WithHint("start the server with log_bin and take a new backup")
	}
	if err := st.checkAvailable(ctx, start, c); err != nil {
		return nil, err
	}
	st.skip = start.Pos
	if st.cred, err = srv.writeCredentials(op); err != nil {
		return nil, err
	}
	if st.dir, err = os.MkdirTemp("", "rewind-binlog-"); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	cmd, err := toolCommand(pctx, op, toolBinlog, st.cred,
		"--read-from-remote-server", "--raw", "--stop-never",
		"--result-file="+st.dir+string(filepath.Separator), start.File)
	if err != nil {
		return nil, err
	}
	st.stderr = &tail{}
	cmd.Stdout, cmd.Stderr = st.stderr, st.stderr
	if err := cmd.Start(); err != nil {
		return nil, toolError(op, toolBinlog, err, st.stderr)
	}
	st.cmd, st.done = cmd, make(chan error, 1)
	go func() { st.done <- cmd.Wait() }()
	ok = true
	return st, nil
}

// checkAvailable fails with a gap error when the server no longer has the start file.
func (st *Streamer) checkAvailable(ctx context.Context, start Position, c *catalog) error {
	rows, err := st.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return st.srv.classify(st.op, err)
	}
	defer rows.Close()
	var names []string
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		var name sql.RawBytes
		vals[0] = &name
		for i := 1; i < len(vals); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			return st.srv.classify(st.op, err)
		}
		names = append(names, string(name))
	}
	if err := rows.Err(); err != nil {
		return st.srv.classify(st.op, err)
	}
	for _, n := range names {
		if n == start.File {
			return nil
		}
	}
	oldest := "(none)"
	if len(names) > 0 {
		oldest = names[0]
	}
	what := "the newest backup's binlog position"
	if c.newest != nil {
		what = "where the vault's binlog ends"
	}
	return errs.Errorf(st.op, errs.NotFound, "gap in the binlog of %q: %s is %s, but %s no longer has that file (its oldest is %s)",
		st.opts.Resource, start, what, st.srv.display, oldest).
		WithHint("the binlog after it was purged before it was shipped; take a new backup ('rewind backup'), then stream again")
}

// pending is binlog bytes read but not stored yet.
type pending struct {
	file        string
	start       uint64
	data        []byte
	first, last time.Time
	next        string
	events      int
	checksum    bool
}

// Tick stores what mariadb-binlog copied since the last Tick: it asks the server for its
// current binlog position and time, waits (up to CatchUp) until the local copy reaches
// that position, then stores the complete events as mysql-binlog points (one per file
// touched; data flushed before each point). When the copy reached the server's position,
// the last point's range ends at the server's time of the question, so the restorable
// range grows to it. It returns the points saved.
//
// Errors: errs.Corrupt (the copy is not a valid binlog), errs.Unavailable (the server or
// mariadb-binlog failed: the process's output is in the message), errs.Canceled, and the
// vault's errors.
func (st *Streamer) Tick(ctx context.Context) ([]*vault.Point, error) {
	now, err := serverTime(ctx, st.op, st.srv, st.db)
	if err != nil {
		return nil, err
	}
	var mfile string
	var mpos uint64
	rows, err := st.db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return nil, st.srv.classify(st.op, err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		var f, p sql.RawBytes
		vals[0], vals[1] = &f, &p
		for i := 2; i < len(vals); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			rows.Close()
			return nil, st.srv.classify(st.op, err)
		}
		mfile = string(f)
		mpos, _ = strconv.ParseUint(string(p), 10, 64)
	}
	rows.Close()
	if mfile == "" {
		return nil, errs.Errorf(st.op, errs.Conflict, "%s reports no binlog position (binary log off?)", st.srv.display)
	}

	var batches []*pending
	size := 0
	deadline := time.Now().Add(st.opts.CatchUp)
	reached := false
	for {
		if err := st.read(&batches, &size); err != nil {
			return nil, err
		}
		if comparePos(st.cur.name, st.cur.off, mfile, mpos) >= 0 {
			reached = true
			break
		}
		if time.Now().After(deadline) || size >= st.opts.MaxPending {
			break
		}
		select {
		case err := <-st.done:
			st.done <- err
			return nil, st.exited(err)
		case <-ctx.Done():
			return nil, errs.E(st.op, errs.Canceled, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var saved []*vault.Point
	for i, b := range batches {
		if len(b.data) == 0 {
			continue
		}
		last := i == len(batches)-1
		p, err := st.save(ctx, b, reached && last, now)
		if err != nil {
			return saved, err
		}
		saved = append(saved, p)
	}
	return saved, nil
}

// exited describes mariadb-binlog's unexpected exit.
func (st *Streamer) exited(err error) error {
	return toolError(st.op, toolBinlog, fmt.Errorf("exited: %v", err), st.stderr)
}

// read parses what the local copy holds beyond st.cur.off into batches.
func (st *Streamer) read(batches *[]*pending, size *int) error {
	for {
		path := filepath.Join(st.dir, st.cur.name)
		data, err := readFrom(path, st.cur.off)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return errs.E(st.op, errs.Unavailable, fmt.Errorf("read the local copy of %s: %w", st.cur.name, err))
		}
		if st.skip > 0 {
			// Resuming inside a file: parse (but do not store again) its bytes up to where
			// the vault's copy ends.
			if uint64(len(data)) < st.skip {
				return nil
			}
			n, err := st.cur.feed(data[:st.skip])
			if err != nil {
				return errs.E(st.op, errs.Corrupt, err)
			}
			if uint64(n) != st.skip {
				return errs.Errorf(st.op, errs.Corrupt, "%s: the vault's copy ends at %d, which is not an event boundary in the server's file", st.cur.name, st.skip)
			}
			data = data[st.skip:]
			st.skip = 0
		}
		start := st.cur.off
		st.cur.resetTimes()
		n, err := st.cur.feed(data)
		if err != nil {
			return errs.E(st.op, errs.Corrupt, err)
		}
		if n > 0 {
			var b *pending
			if k := len(*batches); k > 0 && (*batches)[k-1].file == st.cur.name {
				b = (*batches)[k-1]
			} else {
				b = &pending{file: st.cur.name, start: start}
				*batches = append(*batches, b)
			}
			b.data = append(b.data, data[:n]...)
			first, last := st.cur.times()
			if !first.IsZero() {
				if b.first.IsZero() || first.Before(b.first) {
					b.first = first
				}
				if last.After(b.last) {
					b.last = last
				}
			}
			b.events += st.cur.events
			b.checksum = st.cur.checksum
			*size += n
		}
		if !st.cur.ended {
			return nil
		}
		if k := len(*batches); k > 0 && (*batches)[k-1].file == st.cur.name {
			(*batches)[k-1].next = st.cur.next
		}
		st.cur = newFileScanner(st.cur.next)
	}
}

// readFrom reads path from offset off to its end.
func readFrom(path string, off uint64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// save stores one batch as a mysql-binlog point.
func (st *Streamer) save(ctx context.Context, b *pending, caughtUp bool, now time.Time) (*vault.Point, error) {
	hr := newHashingReader(bytes.NewReader(b.data))
	res, err := files.BackupStream(ctx, st.v, hr, b.file, files.BackupOptions{Now: st.opts.Now})
	if err != nil {
		return nil, err
	}
	if err := st.v.Flush(ctx); err != nil {
		return nil, err
	}
	from, to := b.first, b.last
	if from.IsZero() {
		from, to = now, now
	}
	if caughtUp && now.After(to) {
		to = now
	}
	end := b.start + uint64(len(b.data))
	sum := "none"
	if b.checksum {
		sum = "crc32"
	}
	p := &vault.Point{
		Kind: KindBinlog, Time: st.opts.Now().UTC(), Host: st.opts.Host, Resource: st.opts.Resource,
		Paths: []string{st.srv.display}, Tags: st.opts.Tags, Parent: st.parent, Root: res.Root,
		Summary: vault.Summary{Files: 1, Bytes: uint64(len(b.data)), BlobsAdded: res.Summary.NewBlobs, BytesAdded: res.Summary.NewBytes},
		Range:   &vault.TimeRange{From: from, To: to},
		Meta: map[string]string{
			MetaBinlogFile:    b.file,
			MetaStartPos:      strconv.FormatUint(b.start, 10),
			MetaEndPos:        strconv.FormatUint(end, 10),
			MetaChecksum:      sum,
			MetaEvents:        strconv.Itoa(b.events),
			MetaServerID:      strconv.FormatUint(uint64(st.info.serverID), 10),
			MetaServerVersion: st.info.version,
			MetaSHA256:        hr.sum(),
			MetaBytes:         strconv.Itoa(len(b.data)),
			MetaSource:        st.srv.addr(),
		},
	}
	if b.next != "" {
		p.Meta[MetaNextFile] = b.next
	}
	if _, err := st.v.SavePoint(ctx, p); err != nil {
		return nil, err
	}
	id := p.ID
	st.parent = &id
	return p, nil
}

// Position returns where the vault's copy of the binlog ends.
func (st *Streamer) Position() Position {
	if st.skip > 0 {
		return Position{File: st.cur.name, Pos: st.skip}
	}
	return Position{File: st.cur.name, Pos: st.cur.off}
}

// Close stops mariadb-binlog and removes its files and the option file. It stores
// nothing: call Tick first to keep what arrived.
func (st *Streamer) Close() error {
	if st.cancel != nil {
		st.cancel()
	}
	if st.done != nil {
		<-st.done
		st.done = nil
	}
	if st.dir != "" {
		os.RemoveAll(st.dir)
	}
	if st.cred != nil {
		st.cred.remove()
	}
	if st.db != nil {
		st.db.Close()
	}
	return nil
}

// Stream ships the binary log of the server at url continuously (see OpenStream for
// where it starts): every FlushEvery it stores what arrived (Tick). It returns nil when
// ctx ends, after a last Tick, or the first error.
//
// Errors: those of OpenStream and Tick.
func Stream(ctx context.Context, v Vault, url string, opts StreamOptions) error {
	st, err := OpenStream(ctx, v, url, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	t := time.NewTicker(st.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, err := st.Tick(fctx)
			return err
		case err := <-st.done:
			st.done <- err
			return st.exited(err)
		case <-t.C:
			if _, err := st.Tick(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				return err
			}
		}
	}
}
