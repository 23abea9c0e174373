package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/vault"
)

// BackupOptions configures Backup.
type BackupOptions struct {
	Resource string            // the point's resource (default "mysql:" + host:port or socket)
	Host     string            // the point's host (default os.Hostname)
	Tags     map[string]string // the point's tags
	// Physical takes a physical backup with mariadb-backup instead of a logical dump. It
	// applies only when Rewind runs on the database host, as a user that can read the
	// server's data directory (mariadb-backup copies the files and connects to the server
	// to coordinate); give the URL the server's unix socket (?socket=) or its loopback
	// address.
	Physical bool
	Now      func() time.Time // clock (default time.Now); dates the point
}

// BackupResult is what Backup stored.
type BackupResult struct {
	Point      *vault.Point
	BinlogFile string // the binlog position of the backup's consistent snapshot
	BinlogPos  uint64
	GTID       string // the snapshot's GTID position ("" when the server reported none)
	Bytes      uint64 // size of the dump or archive
}

// Backup takes a consistent backup of the whole server at url
// (mysql://user:password@host:port/ or mysql://user:password@/?socket=/path) and saves it
// as a point: by default a logical dump (mariadb-dump --single-transaction --master-data=2
// --gtid --all-databases --routines --events --triggers), streamed into the vault as
// KindDump; with opts.Physical a mariadb-backup xbstream archive as KindPhysical. The binlog
// file, position and GTID of the snapshot are recorded in the point's meta, so that Stream
// and Restore can continue from it. The server must have its binary log on. Credentials
// reach the tools through a temporary option file (mode 0600), never their command line.
//
// Errors: errs.Invalid (URL, options), errs.Unauthorized (login or privileges refused),
// errs.Conflict (the binary log is off), errs.Unavailable (server, tool or vault not
// reachable; a tool missing or failing), errs.Corrupt (the tool's output lacks the binlog
// position or its completion mark), errs.Canceled, and the vault's errors.
func Backup(ctx context.Context, v Vault, url string, opts BackupOptions) (*BackupResult, error) {
	const op = "mysql.Backup"
	srv, err := parseURL(op, url)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resource == "" {
		opts.Resource = "mysql:" + srv.addr()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	db, err := srv.open(ctx, op)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	info, err := serverInfo(ctx, op, srv, db)
	if err != nil {
		return nil, err
	}
	if !info.logBin {
		return nil, errs.Errorf(op, errs.Conflict, "%s has its binary log off; point-in-time recovery needs it", srv.display).
			WithHint("start the server with log_bin (e.g. log_bin = mysql-bin, binlog_format = ROW) and retry")
	}
	points, err := v.Points(ctx)
	if err != nil {
		return nil, err
	}
	var parent *vault.ID
	for _, p := range points {
		if p.Resource == opts.Resource && (p.Kind == KindDump || p.Kind == KindPhysical) {
			id := p.ID
			parent = &id
		}
	}
	cred, err := srv.writeCredentials(op)
	if err != nil {
		return nil, err
	}
	defer cred.remove()

	var (
		kind string
		res  *BackupResult
		root vault.ID
		size uint64
		sum  string
	)
	if opts.Physical {
		kind = KindPhysical
		root, res, size, sum, err = physicalBackup(ctx, op, v, cred, opts)
	} else {
		kind = KindDump
		root, res, size, sum, err = logicalBackup(ctx, op, v, cred, opts)
	}
	if err != nil {
		return nil, err
	}
	end, err := serverTime(ctx, op, srv, db)
	if err != nil {
		return nil, err
	}
	if err := v.Flush(ctx); err != nil {
		return nil, err
	}
	p := &vault.Point{
		Kind: kind, Time: opts.Now().UTC(), Host: opts.Host, Resource: opts.Resource,
		Paths: []string{srv.display}, Tags: opts.Tags, Parent: parent, Root: root,
		Summary: vault.Summary{Files: 1, Bytes: size},
		Range:   &vault.TimeRange{From: end, To: end},
		Meta: map[string]string{
			MetaBinlogFile:    res.BinlogFile,
			MetaBinlogPos:     strconv.FormatUint(res.BinlogPos, 10),
			MetaServerID:      strconv.FormatUint(uint64(info.serverID), 10),
			MetaServerVersion: info.version,
			MetaSHA256:        sum,
			MetaBytes:         strconv.FormatUint(size, 10),
			MetaSource:        srv.addr(),
		},
	}
	if res.GTID != "" {
		p.Meta[MetaGTID] = res.GTID
	}
	if _, err := v.SavePoint(ctx, p); err != nil {
		return nil, err
	}
	res.Point, res.Bytes = p, size
	return res, nil
}

// info is what Backup and Stream read from the server.
type info struct {
	version  string
	serverID uint32
	logBin   bool
}

func serverInfo(ctx context.Context, op string, srv server, db *sql.DB) (info, error) {
	var i info
	var logBin int
	err := db.QueryRowContext(ctx, "SELECT @@version, @@server_id, @@log_bin").Scan(&i.version, &i.serverID, &logBin)
	if err != nil {
		return i, srv.classify(op, err)
	}
	i.logBin = logBin == 1
	return i, nil
}

// serverTime returns the server's clock (UTC, microseconds): binlog event times come from
// that clock, so ranges use it too.
func serverTime(ctx context.Context, op string, srv server, db *sql.DB) (time.Time, error) {
	var s string
	if err := db.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&s); err != nil {
		return time.Time{}, srv.classify(op, err)
	}
	t, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		return time.Time{}, errs.Errorf(op, errs.Internal, "%s: UTC_TIMESTAMP(6) = %q: %v", srv.display, s, err)
	}
	return t.UTC(), nil
}

// logicalBackup runs mariadb-dump and stores its output.
func logicalBackup(ctx context.Context, op string, v Vault, cred *credentials, opts BackupOptions) (vault.ID, *BackupResult, uint64, string, error) {
	cmd, err := toolCommand(ctx, op, toolDump, cred,
		"--single-transaction", "--master-data=2", "--gtid", "--all-databases",
		"--routines", "--events", "--triggers", "--hex-blob", "--quick")
	if err != nil {
		return vault.ID{}, nil, 0, "", err
	}
	stderr := &tail{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return vault.ID{}, nil, 0, "", errs.E(op, errs.Internal, err)
	}
	if err := cmd.Start(); err != nil {
		return vault.ID{}, nil, 0, "", toolError(op, toolDump, err, stderr)
	}
	scan := &dumpScanner{}
	hr := newHashingReader(io.TeeReader(out, scan))
	stored, serr := files.BackupStream(ctx, v, hr, DumpFile, files.BackupOptions{Now: opts.Now})
	if serr != nil {
		// Stop the dump; its error (a broken pipe) says nothing more than serr.
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return vault.ID{}, nil, 0, "", errs.E(op, errs.Canceled, ctx.Err())
	}
	if werr != nil {
		return vault.ID{}, nil, 0, "", toolError(op, toolDump, werr, stderr)
	}
	if serr != nil {
		return vault.ID{}, nil, 0, "", serr
	}
	res, err := scan.result(op)
	if err != nil {
		return vault.ID{}, nil, 0, "", err
	}
	return stored.Root, res, hr.n, hr.sum(), nil
}

var (
	reChangeMaster = regexp.MustCompile(`^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=([0-9]+);`)
	reGTID         = regexp.MustCompile(`^-- SET GLOBAL gtid_slave_pos='([0-9,-]*)';`)
	dumpCompleted  = []byte("-- Dump completed")
)

// dumpScanner watches a dump's comment lines for the snapshot's binlog position and GTID,
// and keeps the last bytes to check the completion mark. Lines longer than 512 bytes are
// data, never the comments it looks for.
type dumpScanner struct {
	line       []byte
	long       bool
	file, gtid string
	pos        uint64
	found      bool
	last       []byte
}

func (d *dumpScanner) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			if !d.long {
				d.check(d.line)
			}
			d.line, d.long = d.line[:0], false
			continue
		}
		if d.long {
			continue
		}
		if len(d.line) == 512 {
			d.long = true
			continue
		}
		d.line = append(d.line, c)
	}
	d.last = append(d.last, p...)
	if len(d.last) > 256 {
		d.last = append(d.last[:0], d.last[len(d.last)-256:]...)
	}
	return len(p), nil
}

func (d *dumpScanner) check(line []byte) {
	if !bytes.HasPrefix(line, []byte("-- ")) {
		return
	}
	if m := reChangeMaster.FindSubmatch(line); m != nil && !d.found {
		pos, err := strconv.ParseUint(string(m[2]), 10, 64)
		if err == nil && validFileName(string(m[1])) {
			d.file, d.pos, d.found = string(m[1]), pos, true
		}
	}
	if m := reGTID.FindSubmatch(line); m != nil && d.gtid == "" {
		d.gtid = string(m[1])
	}
}

func (d *dumpScanner) result(op string) (*BackupResult, error) {
	if !d.found {
		return nil, errs.Errorf(op, errs.Corrupt, "the dump names no binlog position (no \"-- CHANGE MASTER TO MASTER_LOG_FILE=…\" line)").
			WithHint("check that the server's binary log is on and the user has the RELOAD and BINLOG MONITOR privileges")
	}
	if !bytes.Contains(d.last, dumpCompleted) {
		return nil, errs.Errorf(op, errs.Corrupt, "the dump does not end with %q: it was cut short", dumpCompleted).
			WithHint("check the server's log and retry")
	}
	return &BackupResult{BinlogFile: d.file, BinlogPos: d.pos, GTID: d.gtid}, nil
}

// physicalBackup runs mariadb-backup --backup --stream=xbstream and stores the archive.
func physicalBackup(ctx context.Context, op string, v Vault, cred *credentials, opts BackupOptions) (vault.ID, *BackupResult, uint64, string, error) {
	work, err := os.MkdirTemp("", "rewind-mariabackup-")
	if err != nil {
		return vault.ID{}, nil, 0, "", errs.E(op, errs.Unavailable, err)
	}
	defer os.RemoveAll(work)
	cmd, err := toolCommand(ctx, op, toolBackup, cred, "--backup", "--stream=xbstream", "--target-dir="+work)
	if err != nil {
		return vault.ID{}, nil, 0, "", err
	}
	stderr := &physicalLog{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return vault.ID{}, nil, 0, "", errs.E(op, errs.Internal, err)
	}
	if err := cmd.Start(); err != nil {
		return vault.ID{}, nil, 0, "", toolError(op, toolBackup, err, &stderr.tail)
	}
	hr := newHashingReader(out)
	stored, serr := files.BackupStream(ctx, v, hr, PhysicalFile, files.BackupOptions{Now: opts.Now})
	if serr != nil {
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return vault.ID{}, nil, 0, "", errs.E(op, errs.Canceled, ctx.Err())
	}
	if werr != nil {
		return vault.ID{}, nil, 0, "", toolError(op, toolBackup, werr, &stderr.tail)
	}
	if serr != nil {
		return vault.ID{}, nil, 0, "", serr
	}
	res, err := stderr.result(op)
	if err != nil {
		return vault.ID{}, nil, 0, "", err
	}
	return stored.Root, res, hr.n, hr.sum(), nil
}

// physicalLog reads mariadb-backup's log for the line announcing the binlog position of
// the backup: "MySQL binlog position: filename 'F', position 'P', GTID of the last change 'G'".
type physicalLog struct {
	tail
	all bytes.Buffer
}

var rePhysicalPos = regexp.MustCompile(`binlog position: filename '([^']+)', position '([0-9]+)'(?:, GTID of the last change '([0-9,-]*)')?`)

func (l *physicalLog) Write(p []byte) (int, error) {
	l.tail.Write(p)
	if l.all.Len() < 1<<20 {
		l.all.Write(p)
	}
	return len(p), nil
}

func (l *physicalLog) result(op string) (*BackupResult, error) {
	m := rePhysicalPos.FindSubmatch(l.all.Bytes())
	if m == nil {
		return nil, errs.Errorf(op, errs.Corrupt, "mariadb-backup did not report the binlog position of the backup: %s", l.tail.String()).
			WithHint("check that the server's binary log is on")
	}
	pos, err := strconv.ParseUint(string(m[2]), 10, 64)
	if err != nil || !validFileName(string(m[1])) {
		return nil, errs.Errorf(op, errs.Corrupt, "mariadb-backup reported an invalid binlog position %q", m[0])
	}
	return &BackupResult{BinlogFile: string(m[1]), BinlogPos: pos, GTID: string(m[3])}, nil
}

func describePos(file string, pos uint64) string { return fmt.Sprintf("%s:%d", file, pos) }
