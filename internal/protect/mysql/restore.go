package mysql

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/vault"
)

// Target is what to restore to. The zero Target is the latest state stored.
type Target struct {
	// Time restores every transaction whose binlog events are dated up to Time's second,
	// inclusive (binlog times have one-second resolution; events dated in Time's second
	// are all kept, later ones are not).
	Time *time.Time
	// File and Pos restore to a binlog coordinate (as SHOW MASTER STATUS shows it): every
	// event that starts before Pos in File is replayed, none at or after it.
	File string
	Pos  uint64
}

func (t Target) describe() string {
	switch {
	case t.Time != nil:
		return t.Time.UTC().Format(time.RFC3339Nano)
	case t.File != "":
		return describePos(t.File, t.Pos)
	}
	return "latest"
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// AllowNonEmpty lets a logical restore load into a server that already has databases
	// of its own (the dump drops and recreates the databases it holds).
	AllowNonEmpty bool
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	Base        *vault.Point // the backup loaded
	Span        Span         // what that backup can reach
	BinlogFiles int          // binlog files replayed (logical) or written (physical)
	Bytes       uint64       // bytes of the backup
}

// Restore brings resource back to t from the vault. target is either a server URL
// (mysql://user:password@host:port/): a logical restore into that live server, which must
// be empty (no databases but the system ones) unless opts.AllowNonEmpty — the newest
// mysql-dump whose span holds t is loaded with the mariadb client, then its binlog is
// replayed from the dump's position up to t with mariadb-binlog piped into mariadb; or a
// directory (absent or empty): a physical restore of the newest mysql-physical point
// whose span holds t, extracted with mbstream and prepared with mariadb-backup --prepare,
// with the binlog files to replay up to t written to <target>/rewind-binlog/ and the
// replay command in <target>/rewind-binlog/REPLAY (run it once a server is started on
// the directory). Every byte read from the vault is checked against the SHA-256 its point
// recorded, and every binlog event against its CRC32.
//
// The dump holds the mysql system database, so a logical restore also brings back the
// source's users and grants (active after the target's next restart or FLUSH
// PRIVILEGES). The target user needs all privileges (with BINLOG REPLAY for the binlog).
//
// Errors: errs.Invalid (target outside every restorable span: the spans are named; bad
// URL or directory), errs.NotFound (no backup of resource), errs.Conflict (target server
// not empty, or target directory not empty), errs.Unauthorized, errs.Unavailable (server
// or tool failed: its output is in the message), errs.Corrupt (stored bytes fail their
// checks), errs.Canceled, and the vault's errors.
func Restore(ctx context.Context, v Vault, resource, target string, t Target, opts RestoreOptions) (*RestoreResult, error) {
	const op = "mysql.Restore"
	logical := strings.HasPrefix(target, "mysql://") || strings.HasPrefix(target, "mariadb://")
	if t.File != "" && !validFileName(t.File) {
		return nil, errs.Errorf(op, errs.Invalid, "binlog file %q is not a binlog file name", t.File).
			WithHint("give the file as SHOW MASTER STATUS shows it, e.g. mysql-bin.000042")
	}
	if target == "" {
		return nil, errs.Errorf(op, errs.Invalid, "no restore target").
			WithHint("give a server URL (mysql://user:password@host:3306/) or a directory")
	}
	c, err := loadCatalog(ctx, v, op, resource)
	if err != nil {
		return nil, err
	}
	kind := KindPhysical
	if logical {
		kind = KindDump
	}
	var spans []Span
	for _, b := range c.bases {
		if b.Kind == kind {
			spans = append(spans, c.span(b))
		}
	}
	if len(spans) == 0 {
		return nil, errs.Errorf(op, errs.NotFound, "no %s point of resource %q in the vault", kind, resource).
			WithHint("a server URL target needs a logical backup, a directory target a physical one (rewind backup --physical)")
	}
	span, err := chooseSpan(op, spans, t)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Base: span.Base, Span: span}
	if logical {
		return res, restoreLogical(ctx, op, v, target, span, t, opts, res)
	}
	return res, restorePhysical(ctx, op, v, target, span, t, res)
}

// chooseSpan picks the newest backup whose span holds t.
func chooseSpan(op string, spans []Span, t Target) (Span, error) {
	best := -1
	for i, s := range spans {
		switch {
		case t.Time != nil:
			if !t.Time.Before(s.From) && !t.Time.After(s.To) {
				best = i
			}
		case t.File != "":
			if comparePos(t.File, t.Pos, s.StartFile, s.StartPos) >= 0 && comparePos(t.File, t.Pos, s.EndFile, s.EndPos) <= 0 {
				best = i
			}
		default:
			if best < 0 || !s.To.Before(spans[best].To) {
				best = i
			}
		}
	}
	if best < 0 {
		list := make([]string, len(spans))
		for i, s := range spans {
			list[i] = s.String()
			if s.Gap != nil {
				list[i] += "; then " + s.Gap.String()
			}
		}
		return Span{}, errs.Errorf(op, errs.Invalid, "%s is outside the restorable range: %s", t.describe(), strings.Join(list, " | ")).
			WithHint("choose a time or position inside one of these spans")
	}
	return spans[best], nil
}

// replayArgs returns mariadb-binlog's options for replaying span up to t, and the span's
// files to pass (in order); nil files when nothing is to be replayed.
func replayArgs(span Span, t Target) ([]string, []chainFile) {
	if len(span.files) == 0 {
		return nil, nil
	}
	fs := span.files
	args := []string{"--start-position=" + strconv.FormatUint(span.StartPos, 10)}
	switch {
	case t.Time != nil:
		stop := t.Time.UTC().Truncate(time.Second).Add(time.Second)
		args = append(args, "--stop-datetime="+stop.Format("2006-01-02 15:04:05"))
	case t.File != "":
		for i, f := range fs {
			if f.name == t.File {
				fs = fs[:i+1]
				break
			}
		}
		if fs[len(fs)-1].name != t.File {
			return nil, nil
		}
		if len(fs) == 1 && t.Pos <= span.StartPos {
			return nil, nil
		}
		args = append(args, "--stop-position="+strconv.FormatUint(t.Pos, 10))
	}
	return args, fs
}

// writeBinlogs writes the files fs of the span into dir, verifying every piece's SHA-256
// and every event's framing and CRC32.
func writeBinlogs(ctx context.Context, op string, v Vault, dir string, fs []chainFile) ([]string, error) {
	var paths []string
	for _, f := range fs {
		p := filepath.Join(dir, f.name)
		out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, errs.E(op, errs.Unavailable, err)
		}
		sc := newFileScanner(f.name)
		var off uint64
		for _, pc := range f.pieces {
			r, err := openFile(ctx, v, op, pc.p, pc.file)
			if err != nil {
				out.Close()
				return nil, err
			}
			data, err := io.ReadAll(r)
			if err != nil {
				out.Close()
				return nil, err
			}
			// Pieces may overlap the bytes already written; keep the new part.
			if pc.start < off {
				data = data[off-pc.start:]
			}
			if n, err := sc.feed(data); err != nil || n != len(data) {
				out.Close()
				if err == nil {
					err = fmt.Errorf("%s: piece %d..%d ends inside an event", f.name, pc.start, pc.end)
				}
				return nil, errs.E(op, errs.Corrupt, err).WithHint("the vault's binlog is damaged; run a vault check")
			}
			if _, err := out.Write(data); err != nil {
				out.Close()
				return nil, errs.E(op, errs.Unavailable, err)
			}
			off = pc.end
		}
		if err := out.Close(); err != nil {
			return nil, errs.E(op, errs.Unavailable, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// restoreLogical loads the dump and replays the binlog into a live server.
func restoreLogical(ctx context.Context, op string, v Vault, target string, span Span, t Target, opts RestoreOptions, res *RestoreResult) error {
	srv, err := parseURL(op, target)
	if err != nil {
		return err
	}
	db, err := srv.open(ctx, op)
	if err != nil {
		return err
	}
	defer db.Close()
	if !opts.AllowNonEmpty {
		rows, err := db.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1")
		if err != nil {
			return srv.classify(op, err)
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return srv.classify(op, err)
			}
			names = append(names, n)
		}
		rows.Close()
		if len(names) > 0 {
			return errs.Errorf(op, errs.Conflict, "target server %s is not empty: it has the databases %s", srv.display, strings.Join(names, ", ")).
				WithHint("restore into an empty server, or allow loading into a non-empty one (--force)")
		}
	}
	cred, err := srv.writeCredentials(op)
	if err != nil {
		return err
	}
	defer cred.remove()

	// The dump.
	rd, err := openFile(ctx, v, op, span.Base, DumpFile)
	if err != nil {
		return err
	}
	load, err := toolCommand(ctx, op, toolClient, cred, "--binary-mode", "--batch")
	if err != nil {
		return err
	}
	stderr := &tail{}
	load.Stderr, load.Stdout = stderr, stderr
	counted := &countingReader{r: rd}
	load.Stdin = counted
	if err := load.Run(); err != nil {
		if ctx.Err() != nil {
			return errs.E(op, errs.Canceled, ctx.Err())
		}
		if k := errs.KindOf(err); k == errs.Corrupt || k == errs.NotFound {
			return err
		}
		return toolError(op, toolClient+" (loading the dump)", err, stderr)
	}
	if counted.err != nil {
		return counted.err
	}
	res.Bytes = counted.n

	// The binlog.
	args, fs := replayArgs(span, t)
	if fs == nil {
		return nil
	}
	dir, err := os.MkdirTemp("", "rewind-binlog-restore-")
	if err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	defer os.RemoveAll(dir)
	paths, err := writeBinlogs(ctx, op, v, dir, fs)
	if err != nil {
		return err
	}
	res.BinlogFiles = len(paths)
	dump, err := toolCommand(ctx, op, toolBinlog, nil, append(args, paths...)...)
	if err != nil {
		return err
	}
	replay, err := toolCommand(ctx, op, toolClient, cred, "--binary-mode", "--batch")
	if err != nil {
		return err
	}
	dumpErr, replayErr := &tail{}, &tail{}
	dump.Stderr = dumpErr
	replay.Stderr, replay.Stdout = replayErr, replayErr
	pipe, err := dump.StdoutPipe()
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	replay.Stdin = pipe
	if err := dump.Start(); err != nil {
		return toolError(op, toolBinlog, err, dumpErr)
	}
	rerr := replay.Run()
	if rerr != nil {
		io.Copy(io.Discard, pipe)
	}
	derr := dump.Wait()
	if ctx.Err() != nil {
		return errs.E(op, errs.Canceled, ctx.Err())
	}
	if derr != nil {
		return toolError(op, toolBinlog+" (reading the binlog)", derr, dumpErr)
	}
	if rerr != nil {
		return toolError(op, toolClient+" (replaying the binlog)", rerr, replayErr)
	}
	return nil
}

// countingReader counts bytes and keeps the first error that is not io.EOF (the tool
// reading it only sees a short read).
type countingReader struct {
	r   io.Reader
	n   uint64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// restorePhysical extracts and prepares a physical backup into dir, and writes the binlog
// to replay.
func restorePhysical(ctx context.Context, op string, v Vault, dir string, span Span, t Target, res *RestoreResult) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errs.E(op, errs.Invalid, fmt.Errorf("target directory %s: %w", dir, err))
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return errs.E(op, errs.Invalid, fmt.Errorf("target directory %s: %w", dir, err))
	}
	if len(ents) > 0 {
		return errs.Errorf(op, errs.Conflict, "target directory %s is not empty", dir).
			WithHint("restore into a new or empty directory")
	}
	rd, err := openFile(ctx, v, op, span.Base, PhysicalFile)
	if err != nil {
		return err
	}
	x, err := toolCommand(ctx, op, toolStream, nil, "-x", "-C", dir)
	if err != nil {
		return err
	}
	stderr := &tail{}
	x.Stderr, x.Stdout = stderr, stderr
	counted := &countingReader{r: rd}
	x.Stdin = counted
	if err := x.Run(); err != nil {
		if counted.err != nil {
			return counted.err
		}
		return toolError(op, toolStream, err, stderr)
	}
	if counted.err != nil {
		return counted.err
	}
	res.Bytes = counted.n
	prep, err := toolCommand(ctx, op, toolBackup, nil, "--prepare", "--target-dir="+dir)
	if err != nil {
		return err
	}
	prepErr := &tail{}
	prep.Stderr, prep.Stdout = prepErr, prepErr
	if err := prep.Run(); err != nil {
		return toolError(op, toolBackup+" --prepare", err, prepErr)
	}
	args, fs := replayArgs(span, t)
	if fs == nil {
		return nil
	}
	bdir := filepath.Join(dir, "rewind-binlog")
	if err := os.Mkdir(bdir, 0o700); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	paths, err := writeBinlogs(ctx, op, v, bdir, fs)
	if err != nil {
		return err
	}
	res.BinlogFiles = len(paths)
	var b strings.Builder
	b.WriteString("# Start a server on this directory, then replay the binlog up to the restore target:\n")
	b.WriteString("TZ=UTC mariadb-binlog")
	for _, a := range args {
		b.WriteString(" '" + a + "'")
	}
	for _, p := range paths {
		b.WriteString(" '" + p + "'")
	}
	b.WriteString(" | mariadb --binary-mode\n")
	if err := os.WriteFile(filepath.Join(bdir, "REPLAY"), []byte(b.String()), 0o600); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	return nil
}
