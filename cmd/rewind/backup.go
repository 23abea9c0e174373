package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/redis"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newBackupCmd() *cobra.Command {
	var (
		vo            vaultOpts
		tags          []string
		resource      string
		host          string
		excludes      []string
		excludeFiles  []string
		oneFileSystem bool
		stdin         bool
		stdinName     string
		physical      bool
	)
	cmd := &cobra.Command{
		Use:   "backup [flags] PATH... | DATABASE-URL",
		Short: "Back up files and directories, a stream or a database into a vault",
		Long: `Back up files and directories into a vault as a new recovery point.

A second backup of the same resource reads only files that changed since the last point
(compared by size, mtime, ctime and inode); everything else is reused. A file that changes
or vanishes while it is read gives a warning and the backup still completes (exit code 3).

The resource names what is protected; by default it is HOST:PATH[,PATH…]. With --stdin
the standard input is stored as one file (for database dumps); --resource is required.

A database URL instead of paths backs up that database as one point (see 'rewind protect'
for continuous protection): postgres://user:password@host:port/ takes a physical base
backup over the replication protocol (the role needs REPLICATION), sqlite:///abs/path.db a
consistent snapshot of a WAL-mode database, redis://[user:password@]host:port the server's
RDB snapshot, mysql://user:password@host:3306/ (or mariadb://) a consistent dump of the whole
MySQL/MariaDB server with mariadb-dump, recording its binlog position (the server needs
log_bin; see docs/resources/mysql.md for the user's privileges). With --physical, a MySQL
backup is a mariadb-backup copy of the data directory instead: run it on the database host
as a user that can read that directory, with the server's socket
(mysql://root@/?socket=/run/mysqld/mysqld.sock) or loopback address. The default resource
is postgres:HOST:PORT, sqlite:PATH, redis:HOST:PORT or mysql:HOST:PORT. Passwords in URLs
are never printed.`,
		Example: `  rewind backup --vault /srv/vaults/main --tag app=shop /srv/shop/data /etc/shop
  rewind backup --vault /srv/vaults/main --exclude '*.tmp' --one-file-system /
  pg_dump shop | rewind backup --vault /srv/vaults/main --stdin --resource shop-dump --stdin-name shop.sql
  rewind backup --vault /srv/vaults/main --resource orders-db 'postgres://rewind:secret@db1:5432/?sslmode=require'
  rewind backup --vault /srv/vaults/main sqlite:///srv/app/app.db
  rewind backup --vault /srv/vaults/main --resource cache redis://:secret@127.0.0.1:6379
  rewind backup --vault /srv/vaults/main --resource shop-mysql 'mysql://backup:secret@db2:3306/'
  rewind backup --vault /srv/vaults/main --resource shop-mysql --physical 'mysql://root@/?socket=/run/mysqld/mysqld.sock'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := parseSource("backup", args)
			if err != nil {
				return err
			}
			if src != nil {
				if err := refuseFlags(cmd, "a "+src.kind+" backup", "stdin", "stdin-name", "exclude", "exclude-file", "one-file-system"); err != nil {
					return err
				}
				if src.kind != sourceMySQL {
					if err := refuseFlags(cmd, "a "+src.kind+" backup (only MySQL/MariaDB has a physical backup)", "physical"); err != nil {
						return err
					}
				}
				return src.scrub(backupDB(cmd, &vo, src, dbBackupOpts{resource: resource, host: host, tags: tags, physical: physical}))
			}
			if err := refuseFlags(cmd, "a files backup (only MySQL/MariaDB has a physical backup)", "physical"); err != nil {
				return err
			}
			if stdin == (len(args) > 0) {
				if stdin {
					return errs.Errorf("backup", errs.Invalid, "--stdin takes no paths")
				}
				return errs.Errorf("backup", errs.Invalid, "nothing to back up").WithHint("give one or more paths, or --stdin")
			}
			if stdin && resource == "" {
				return errs.Errorf("backup", errs.Invalid, "--stdin needs --resource NAME").WithHint("name the stream, e.g. --resource shop-dump")
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			if host == "" {
				host = hostname()
			}
			var paths []string
			for _, p := range args {
				abs, err := filepath.Abs(p)
				if err != nil {
					return errs.E("backup", errs.Invalid, err)
				}
				if _, err := os.Lstat(abs); err != nil {
					return errs.Errorf("backup", errs.NotFound, "%s: %v", p, err).WithHint("check the path; nothing was written")
				}
				paths = append(paths, abs)
			}
			if resource == "" {
				resource = host + ":" + strings.Join(paths, ",")
			}
			for _, f := range excludeFiles {
				if _, err := os.Stat(f); err != nil {
					return errs.Errorf("backup", errs.Invalid, "--exclude-file %s: %v", f, err)
				}
			}

			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			lock, err := r.Lock(ctx, false)
			if err != nil {
				return err
			}
			defer lock.Unlock(ctx)

			start := time.Now()
			kind := vault.KindFiles
			if stdin {
				kind = vault.KindStream
			}
			var parent *vault.Point
			if !stdin {
				parent, err = r.FindPoint(ctx, "latest", resource)
				if err != nil && !errs.Is(err, errs.NotFound) {
					return err
				}
				if parent != nil && (parent.Kind != kind || parent.Host != host) {
					parent = nil
				}
			}

			prog := newProgress("backup", vo.json)
			opts := files.BackupOptions{
				Excludes: excludes, ExcludeFiles: excludeFiles, OneFileSystem: oneFileSystem,
				Progress: prog.update,
			}
			if parent != nil {
				opts.Parent = parent.Root
			}
			var res *files.BackupResult
			if stdin {
				res, err = files.BackupStream(ctx, files.FromVault(r), os.Stdin, stdinName, opts)
			} else {
				res, err = files.Backup(ctx, files.FromVault(r), paths, opts)
			}
			prog.done()
			if err != nil {
				return err
			}
			if err := r.Flush(ctx); err != nil {
				return err
			}
			p := &vault.Point{
				Kind: kind, Time: start.UTC(), Host: host, Resource: resource, Paths: paths,
				Tags: tagMap, Root: res.Root,
				Summary: vault.Summary{
					Files: res.Summary.Files, Dirs: res.Summary.Dirs, Bytes: res.Summary.BytesInTree,
					BlobsAdded: res.Summary.NewBlobs, BytesAdded: res.Summary.NewBytes,
					Duration: time.Since(start),
				},
			}
			if stdin {
				p.Paths = []string{stdinName}
			}
			if parent != nil {
				id := parent.ID
				p.Parent = &id
			}
			id, err := r.SavePoint(ctx, p)
			if err != nil {
				return err
			}
			return reportBackup(cmd.OutOrStdout(), vo.json, id, p, res, time.Since(start))
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print progress and the summary as JSON lines")
	f := cmd.Flags()
	f.StringArrayVar(&tags, "tag", nil, "add a tag key=value to the point (repeatable)")
	f.StringVar(&resource, "resource", "", "name of the protected resource (default HOST:PATHS)")
	f.StringVar(&host, "host", "", "host name recorded in the point (default this machine's)")
	f.StringArrayVar(&excludes, "exclude", nil, "exclude paths matching this pattern (repeatable; * ? [..] and ** across directories)")
	f.StringArrayVar(&excludeFiles, "exclude-file", nil, "read exclude patterns from a file, one per line (repeatable)")
	f.BoolVarP(&oneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	f.BoolVar(&stdin, "stdin", false, "back up standard input as one file")
	f.StringVar(&stdinName, "stdin-name", "stdin", "file name for --stdin data")
	f.BoolVar(&physical, "physical", false, "MySQL/MariaDB: copy the data directory with mariadb-backup (on the database host) instead of a dump")
	return cmd
}

func reportBackup(w io.Writer, jsonOut bool, id vault.ID, p *vault.Point, res *files.BackupResult, took time.Duration) error {
	for _, warn := range res.Warnings {
		fmt.Fprintf(os.Stderr, "warning: %s\n", warn)
	}
	s := res.Summary
	if jsonOut {
		warnings := make([]map[string]string, 0, len(res.Warnings))
		for _, warn := range res.Warnings {
			warnings = append(warnings, map[string]string{"path": warn.Path, "error": warn.Err.Error()})
		}
		if err := writeJSONLine(w, map[string]any{
			"message_type": "summary", "point": id.String(), "short_id": id.Short(),
			"resource": p.Resource, "host": p.Host, "time": p.Time,
			"files": s.Files, "dirs": s.Dirs, "others": s.Others,
			"files_read": s.FilesRead, "files_unchanged": s.FilesUnchanged,
			"bytes_read": s.BytesRead, "bytes_in_tree": s.BytesInTree,
			"blobs_added": s.NewBlobs, "bytes_added": s.NewBytes,
			"seconds": took.Seconds(), "warnings": warnings,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "point %s saved (%s)\n", id.Short(), p.Resource)
		fmt.Fprintf(w, "  %d files, %d dirs, %d other; %d read, %d unchanged\n", s.Files, s.Dirs, s.Others, s.FilesRead, s.FilesUnchanged)
		fmt.Fprintf(w, "  %s in the tree, %s read, %s new in the vault, in %s\n",
			humanBytes(s.BytesInTree), humanBytes(s.BytesRead), humanBytes(s.NewBytes), took.Round(time.Millisecond))
	}
	if len(res.Warnings) > 0 {
		return exitWith(exitPartial, fmt.Errorf("backup completed with %d warnings; the point was saved", len(res.Warnings)))
	}
	return nil
}

// dbBackupOpts are the backup flags that apply to a database source.
type dbBackupOpts struct {
	resource string
	host     string // empty: PostgreSQL records the server's address, the others this host
	tags     []string
	physical bool // MySQL: mariadb-backup instead of mariadb-dump
}

// backupDB stores one point of a database source under the vault's shared lock: a
// PostgreSQL base backup, an SQLite snapshot, a Redis RDB or a MySQL dump (or physical
// copy).
func backupDB(cmd *cobra.Command, vo *vaultOpts, src *dbSource, o dbBackupOpts) error {
	ctx := cmd.Context()
	tags, err := parseTags(o.tags)
	if err != nil {
		return err
	}
	resource := o.resource
	if resource == "" {
		resource = src.defaultResource()
	}
	r, err := vo.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))

	start := time.Now()
	var p *vault.Point
	switch src.kind {
	case sourcePostgres:
		prog := newArchiveProgress(vo.json)
		p, err = postgres.BaseBackup(ctx, postgres.FromVault(r), src.url, postgres.BaseOptions{
			Resource: resource, Host: o.host, Tags: tags, Progress: prog.update})
		prog.done()
	case sourceSQLite:
		p, err = sqlite.Snapshot(ctx, sqlite.FromVault(r), src.path, sqlite.SnapshotOptions{
			Resource: resource, Host: hostOr(o.host), Tags: tags})
	case sourceRedis:
		p, err = redis.Backup(ctx, redis.FromVault(r), src.url, redis.BackupOptions{
			Resource: resource, Host: hostOr(o.host), Tags: tags})
	case sourceMySQL:
		var res *mysql.BackupResult
		res, err = mysql.Backup(ctx, mysql.FromVault(r), src.url, mysql.BackupOptions{
			Resource: resource, Host: hostOr(o.host), Tags: tags, Physical: o.physical})
		if err == nil {
			p = res.Point
		}
	default:
		return errs.Errorf("backup", errs.Internal, "source kind %q has no backup", src.kind)
	}
	if err != nil {
		return err
	}
	return reportDBPoint(cmd.OutOrStdout(), vo.json, p, time.Since(start))
}

// hostOr returns h, or this machine's name (REWIND_HOST first).
func hostOr(h string) string {
	if h != "" {
		return h
	}
	return hostname()
}

// reportDBPoint prints a database point just saved, like a files backup's summary.
func reportDBPoint(w io.Writer, jsonOut bool, p *vault.Point, took time.Duration) error {
	s := p.Summary
	if jsonOut {
		meta := p.Meta
		if meta == nil {
			meta = map[string]string{}
		}
		return writeJSONLine(w, map[string]any{
			"message_type": "summary", "point": p.ID.String(), "short_id": p.ID.Short(),
			"kind": p.Kind, "resource": p.Resource, "host": p.Host, "time": p.Time,
			"files": s.Files, "bytes": s.Bytes, "blobs_added": s.BlobsAdded, "bytes_added": s.BytesAdded,
			"seconds": took.Seconds(), "meta": meta,
		})
	}
	fmt.Fprintf(w, "point %s saved (%s, %s)\n", p.ID.Short(), p.Resource, p.Kind)
	switch p.Kind {
	case postgres.KindBase:
		fmt.Fprintf(w, "  PostgreSQL %s base backup: LSN %s to %s (consistent there), timeline %s, %d archives\n",
			pgVersion(p.Meta[postgres.MetaPGVersion]), p.Meta[postgres.MetaStartLSN], p.Meta[postgres.MetaEndLSN],
			p.Meta[postgres.MetaEndTimeline], s.Files)
	case sqlite.KindSnapshot:
		fmt.Fprintf(w, "  SQLite snapshot: %s pages of %s bytes\n", p.Meta[sqlite.MetaDBPages], p.Meta[sqlite.MetaPageSize])
	case redis.KindRDB:
		fmt.Fprintf(w, "  Redis %s RDB (format %s): %s keys\n", p.Meta[redis.MetaRedisVersion], p.Meta[redis.MetaRDBVersion], p.Meta[redis.MetaKeys])
	case mysql.KindDump, mysql.KindPhysical:
		what := "logical dump"
		if p.Kind == mysql.KindPhysical {
			what = "physical backup"
		}
		gtid := ""
		if g := p.Meta[mysql.MetaGTID]; g != "" {
			gtid = ", GTID " + g
		}
		fmt.Fprintf(w, "  MySQL/MariaDB %s %s: consistent at binlog %s:%s%s\n", p.Meta[mysql.MetaServerVersion], what,
			p.Meta[mysql.MetaBinlogFile], p.Meta[mysql.MetaBinlogPos], gtid)
	}
	fmt.Fprintf(w, "  %s in the point, %s new in the vault, in %s\n", humanBytes(s.Bytes), humanBytes(s.BytesAdded), took.Round(time.Millisecond))
	return nil
}

// pgVersion turns server_version_num (170002) into "17.2".
func pgVersion(num string) string {
	var n int
	if _, err := fmt.Sscan(num, &n); err != nil || n < 100000 {
		return num
	}
	return fmt.Sprintf("%d.%d", n/10000, n%10000)
}

// archiveProgress shows a base backup's progress (the archive being read and the bytes so
// far): a line on a terminal, a JSON status line about once a second with --json, and
// nothing otherwise.
type archiveProgress struct {
	mu      sync.Mutex
	w       io.Writer
	mode    int
	start   time.Time
	last    time.Time
	printed bool
}

func newArchiveProgress(jsonOut bool) *archiveProgress {
	p := &archiveProgress{start: time.Now()}
	switch {
	case jsonOut:
		p.mode, p.w = progressJSON, os.Stdout
	case term.IsTerminal(int(os.Stderr.Fd())):
		p.mode, p.w = progressBar, os.Stderr
	}
	return p
}

// update is a postgres.BaseOptions.Progress.
func (p *archiveProgress) update(archive string, n uint64) {
	if p.mode == progressNone {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	interval := 250 * time.Millisecond
	if p.mode == progressJSON {
		interval = time.Second
	}
	if now.Sub(p.last) < interval {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed
	}
	if p.mode == progressJSON {
		b, _ := json.Marshal(map[string]any{"message_type": "status", "action": "backup", "seconds_elapsed": int(elapsed),
			"current": archive, "bytes": n, "bytes_per_second": int64(rate)})
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	fmt.Fprintf(p.w, "\r\033[Kbackup %s: %s, %s/s", archive, humanBytes(n), humanBytes(uint64(rate)))
	p.printed = true
}

func (p *archiveProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == progressBar && p.printed {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
