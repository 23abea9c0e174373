package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/redis"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newRestoreCmd() *cobra.Command {
	var (
		vo       vaultOpts
		target   string
		includes []string
		resource string
		workers  int
		server   string
		vaultArg string
		pointArg string
		db       dbRestoreOpts
	)
	cmd := &cobra.Command{
		Use:   "restore [flags] [POINT]",
		Short: "Restore a recovery point into a directory, or a database to a moment",
		Long: `Restore a recovery point into --target.

POINT is "latest" (with --resource: that resource's latest point), a point ID or a unique
prefix of one. A point of one backed-up directory restores that directory's contents into
the target; several paths restore side by side under it. Existing files in the target are
replaced and existing directories merged; nothing is ever written outside the target, and
symlinks found in the target are replaced, never followed.

Files whose data cannot be read back (a damaged or missing pack) are reported and the rest
is restored; the exit code is then 13.

Database points restore something that starts:
  PostgreSQL: --target is an empty (or missing) directory that becomes a data directory set
    up to recover to --at TIME (RFC 3339), --lsn, --xid or --restore-point and stop there
    (inclusive; --exclusive stops just before). Without a target it recovers to the end of
    the stored WAL ('latest'). Start it with pg_ctl as the postgres user.
  SQLite: --target is the database file to create (--overwrite replaces one), as of --at.
  Redis: --target is the RDB file to write (e.g. /var/lib/redis/dump.rdb, Redis stopped).
  MySQL/MariaDB: --target mysql://user:password@host:3306/ loads the newest dump that reaches
    the target into that live server and replays the binlog up to --at TIME (every event
    dated in TIME's second or before: binlog times have one-second resolution) or to
    --binlog-file F --binlog-pos N (events starting before N); none: the end of the stored
    binlog. The server must have no databases but the system ones unless --force (the
    dump then replaces the databases it holds). --target DIR (empty or missing) extracts and
    prepares the newest physical backup there and writes the binlog to replay, with the
    command, to DIR/rewind-binlog/REPLAY.
Options that do not apply to the point's kind are refused (exit 2).`,
		Example: `  rewind restore --vault /srv/vaults/main latest --target /tmp/r
  rewind restore --vault /srv/vaults/main latest --resource shop-files --target /srv/shop --include 'data/**'
  rewind restore --vault /srv/vaults/main 3fa9c2e1 --target /tmp/r --include '*.conf'
  rewind --server http://127.0.0.1:8080 restore --resource app-files --point latest --target /srv/restore/app
  rewind restore --vault /srv/vaults/main latest --resource orders-db --at 2026-11-25T10:41:07Z --target /srv/restore/pgdata
  rewind restore --vault /srv/vaults/main latest --resource orders-db --restore-point before-migration --exclusive --target /srv/restore/pgdata
  rewind restore --vault /srv/vaults/main latest --resource sqlite:/srv/app/app.db --at 2026-11-25T10:41:07Z --target /srv/restore/app.db
  rewind restore --vault /srv/vaults/main latest --resource redis:127.0.0.1:6379 --target /var/lib/redis/dump.rdb --overwrite
  rewind restore --vault /srv/vaults/main latest --resource shop-mysql --at 2026-11-25T10:41:07Z --target 'mysql://root:secret@db3:3306/'
  rewind restore --vault /srv/vaults/main latest --resource shop-mysql --binlog-file mysql-bin.000042 --binlog-pos 1337 --target 'mysql://root:secret@db3:3306/' --force
  rewind restore --vault /srv/vaults/main latest --resource shop-mysql --target /srv/restore/mariadb`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if target == "" {
				return errs.Errorf("restore", errs.Invalid, "--target is required").WithHint("give the directory to restore into, e.g. --target /tmp/r")
			}
			ref := pointArg
			if len(args) == 1 {
				if ref != "" && ref != args[0] {
					return errs.Errorf("restore", errs.Invalid, "point given twice: %q and --point %q", args[0], ref)
				}
				ref = args[0]
			}
			if url, ok := serverMode(server, vo.url); ok {
				if err := refuseFlags(cmd, "a restore through a server", dbRestoreFlags...); err != nil {
					return err
				}
				// The server runs a restore job (on the resource's host) and reports it.
				if ref == "" {
					ref = "latest"
				}
				return serverRestore(cmd, url, vo.json, resource, ref, vaultArg, target)
			}
			if ref == "" {
				return errs.Errorf("restore", errs.Invalid, "which point? give POINT (latest, an ID or a prefix)")
			}
			r, err := vo.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.FindPoint(ctx, ref, resource)
			if err != nil {
				return err
			}
			if m := urlScheme.FindStringSubmatch(target); m != nil && (!isMySQLURL(target) || dbKindOf(p.Kind) != sourceMySQL) {
				return errs.Errorf("restore", errs.Invalid, "--target %s is a URL: only MySQL/MariaDB points restore into a server, given as mysql://…", redactURL(target)).
					WithHint("give a directory or file path as --target, or a mysql:// server URL for a MySQL/MariaDB point")
			}
			switch dbKindOf(p.Kind) {
			case sourceFiles:
				if err := refuseFlags(cmd, "a files restore", dbRestoreFlags...); err != nil {
					return err
				}
			case "":
				return errs.Errorf("restore", errs.Invalid, "point %s is of kind %q, which this version of rewind cannot restore", p.ID.Short(), p.Kind).
					WithHint("restore it with the version of rewind that wrote it")
			default:
				if err := refuseFlags(cmd, "a database restore", "include", "workers"); err != nil {
					return err
				}
				db.target, db.explicit = target, strings.ToLower(strings.TrimSpace(ref)) != "latest"
				if isMySQLURL(target) {
					// The target server's password must not show in any message either.
					tsrc, err := parseMySQLURL("restore", target)
					if err != nil {
						return err
					}
					return tsrc.scrub(restoreDB(cmd, r, p, vo.json, db))
				}
				return restoreDB(cmd, r, p, vo.json, db)
			}
			start := time.Now()
			prog := newProgress("restore", vo.json)
			if workers <= 0 {
				// Reads of the vault and writes of the target wait on storage, so keep more
				// of them in flight than there are cores.
				workers = max(8, 2*runtime.NumCPU())
			}
			res, err := files.Restore(ctx, files.FromVault(r), p.Root, target, files.RestoreOptions{
				Include: includes, Workers: workers, Progress: prog.update,
			})
			prog.done()
			if res != nil {
				for _, w := range res.Warnings {
					fmt.Fprintf(os.Stderr, "warning: %s\n", w)
				}
				for _, f := range res.Failed {
					fmt.Fprintf(os.Stderr, "failed: %s\n", f)
				}
				took := time.Since(start)
				out := cmd.OutOrStdout()
				if vo.json {
					if jerr := writeJSONLine(out, map[string]any{
						"message_type": "summary", "point": p.ID.String(), "target": target,
						"files": res.Files, "dirs": res.Dirs, "others": res.Others, "bytes": res.Bytes,
						"failed": nonNil(res.Failed), "warnings": len(res.Warnings), "seconds": took.Seconds(),
					}); jerr != nil {
						return jerr
					}
				} else {
					fmt.Fprintf(out, "restored point %s to %s: %d files, %d dirs, %d other, %s in %s\n",
						p.ID.Short(), target, res.Files, res.Dirs, res.Others, humanBytes(res.Bytes), took.Round(time.Millisecond))
				}
			}
			if err != nil {
				return err
			}
			if len(res.Warnings) > 0 {
				return exitWith(exitPartial, fmt.Errorf("restore completed with %d warnings", len(res.Warnings)))
			}
			return nil
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print progress and the summary as JSON lines")
	f := cmd.Flags()
	f.StringVarP(&target, "target", "t", "", "directory to restore into (created if missing); for SQLite and Redis points, the file to write; for MySQL, a server URL or a directory")
	f.StringArrayVar(&includes, "include", nil, "restore only paths matching this pattern (repeatable)")
	f.StringVar(&resource, "resource", "", "with latest: the resource whose latest point to restore")
	f.StringVar(&server, "server", "", "ask this server to run the restore as a job (env REWIND_SERVER)")
	f.StringVar(&vaultArg, "from-vault", "", "with --server: the configured vault to restore from (default: the point's)")
	f.StringVar(&pointArg, "point", "", "the point (same as the POINT argument)")
	f.IntVar(&workers, "workers", 0, "blobs read and written in parallel (default: twice the CPUs, at least 8)")
	db.register(cmd)
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dbRestoreFlags are the restore options of database points.
var dbRestoreFlags = []string{"at", "lsn", "xid", "restore-point", "exclusive", "overwrite", "force", "binlog-file", "binlog-pos"}

// mysqlRestoreFlags are the restore options of MySQL points only.
var mysqlRestoreFlags = []string{"force", "binlog-file", "binlog-pos"}

// dbRestoreOpts are the restore flags of database points.
type dbRestoreOpts struct {
	at, lsn, xid, name string
	exclusive          bool
	overwrite          bool
	force              bool   // MySQL: load into a server that has databases
	binlogFile         string // MySQL: restore to this binlog file …
	binlogPos          uint64 // … and position
	target             string
	explicit           bool // a point ID was given rather than "latest"
}

func (o *dbRestoreOpts) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.at, "at", "", "PostgreSQL, SQLite, MySQL: restore the state at this time (RFC 3339, e.g. 2026-11-25T10:41:07Z)")
	f.StringVar(&o.lsn, "lsn", "", "PostgreSQL: recover to this WAL position (e.g. 16/B374D848)")
	f.StringVar(&o.xid, "xid", "", "PostgreSQL: recover to this transaction ID")
	f.StringVar(&o.name, "restore-point", "", "PostgreSQL: recover to this named restore point (pg_create_restore_point)")
	f.BoolVar(&o.exclusive, "exclusive", false, "PostgreSQL: stop just before the target instead of just after it")
	f.BoolVar(&o.overwrite, "overwrite", false, "SQLite, Redis: replace an existing target file")
	f.BoolVar(&o.force, "force", false, "MySQL: load into a target server that already has databases (the dump replaces those it holds)")
	f.StringVar(&o.binlogFile, "binlog-file", "", "MySQL: restore to this binlog file (with --binlog-pos), as SHOW MASTER STATUS names it")
	f.Uint64Var(&o.binlogPos, "binlog-pos", 0, "MySQL: restore to this position in --binlog-file (events starting before it are replayed)")
}

// parseAt parses --at.
func parseAt(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, errs.Errorf("restore", errs.Invalid, "--at %q is not an RFC 3339 time", s).
			WithHint("write it like 2026-11-25T10:41:07Z or 2026-11-25T11:41:07.250+01:00")
	}
	return &t, nil
}

// restoreDB restores database point p (its resource) as o says.
func restoreDB(cmd *cobra.Command, r *vault.Repository, p *vault.Point, jsonOut bool, o dbRestoreOpts) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	start := time.Now()
	at, err := parseAt(o.at)
	if err != nil {
		return err
	}
	switch dbKindOf(p.Kind) {
	case sourcePostgres:
		if err := refuseFlags(cmd, "a PostgreSQL restore", append([]string{"overwrite"}, mysqlRestoreFlags...)...); err != nil {
			return err
		}
		t := postgres.Target{Time: at, LSN: o.lsn, XID: o.xid, Name: o.name, Exclusive: o.exclusive}
		none := at == nil && o.lsn == "" && o.xid == "" && o.name == ""
		if none && o.exclusive {
			return errs.Errorf("restore", errs.Invalid, "--exclusive needs a recovery target").
				WithHint("give --at, --lsn, --xid or --restore-point")
		}
		if none && o.explicit {
			return errs.Errorf("restore", errs.Invalid, "point %s is part of PostgreSQL resource %q, which restores to a target, not to one point", p.ID.Short(), p.Resource).
				WithHint("give --at TIME, --lsn, --xid or --restore-point, or restore 'latest --resource " + p.Resource + "' for the end of the stored WAL")
		}
		res, err := postgres.Restore(ctx, postgres.FromVault(r), p.Resource, o.target, t, postgres.RestoreOptions{})
		if err != nil {
			return err
		}
		goal := describeTarget(t)
		startCmd := "pg_ctl -D " + o.target + " start"
		if jsonOut {
			return writeJSONLine(out, map[string]any{
				"message_type": "summary", "kind": sourcePostgres, "resource": p.Resource, "target": o.target,
				"base": res.Base.ID.String(), "files": res.Files, "bytes": res.Bytes, "wal_segments": res.WALSegments,
				"recovery_target": goal, "inclusive": !o.exclusive,
				"span": map[string]any{"from": res.Span.From, "to": res.Span.To, "from_lsn": res.Span.FromLSN.String(),
					"to_lsn": res.Span.ToLSN.String(), "timeline": res.Span.Timeline},
				"start_command": startCmd, "seconds": time.Since(start).Seconds(),
			})
		}
		fmt.Fprintf(out, "restored PostgreSQL resource %s to %s: base backup %s and %d WAL segments, in %s\n",
			p.Resource, o.target, res.Base.ID.Short(), res.WALSegments, time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(out, "it recovers to %s and stops there (restorable with this base: %s .. %s)\n", goal,
			formatTime(res.Span.From), formatTime(res.Span.To))
		fmt.Fprintf(out, "start it as the postgres user: %s\n", startCmd)
		fmt.Fprintf(out, "  (e.g. sudo -u postgres %s; its postgresql.conf is the source's: set archive_mode = off first beside the original)\n", startCmd)
		return nil

	case sourceSQLite:
		if err := refuseFlags(cmd, "a SQLite restore", append([]string{"lsn", "xid", "restore-point", "exclusive"}, mysqlRestoreFlags...)...); err != nil {
			return err
		}
		if at == nil && o.explicit {
			// A point ID stands for the state that point reaches.
			t := p.Time
			if p.Range != nil {
				t = p.Range.To
			}
			at = &t
		}
		res, err := sqlite.Restore(ctx, sqlite.FromVault(r), p.Resource, o.target, sqlite.RestoreOptions{At: at, Overwrite: o.overwrite})
		if err != nil {
			return err
		}
		if jsonOut {
			return writeJSONLine(out, map[string]any{
				"message_type": "summary", "kind": sourceSQLite, "resource": p.Resource, "target": o.target,
				"snapshot": res.Snapshot.String(), "points": res.Points, "commits": res.Commits, "state": res.State,
				"pages": res.Pages, "page_size": res.PageSize, "seconds": time.Since(start).Seconds(),
			})
		}
		fmt.Fprintf(out, "restored SQLite resource %s to %s: snapshot %s and %d transactions, the state at %s (%d pages of %d bytes), in %s\n",
			p.Resource, o.target, res.Snapshot.Short(), res.Commits, res.State.UTC().Format(time.RFC3339Nano), res.Pages, res.PageSize,
			time.Since(start).Round(time.Millisecond))
		return nil

	case sourceRedis:
		if err := refuseFlags(cmd, "a Redis restore", append([]string{"at", "lsn", "xid", "restore-point", "exclusive"}, mysqlRestoreFlags...)...); err != nil {
			return err
		}
		q, err := redis.Restore(ctx, redis.FromVault(r), p.Resource, o.target, redis.RestoreOptions{Point: p.ID, Overwrite: o.overwrite})
		if err != nil {
			return err
		}
		if jsonOut {
			return writeJSONLine(out, map[string]any{
				"message_type": "summary", "kind": sourceRedis, "resource": q.Resource, "target": o.target,
				"point": q.ID.String(), "bytes": q.Summary.Bytes, "keys": q.Meta[redis.MetaKeys], "seconds": time.Since(start).Seconds(),
			})
		}
		fmt.Fprintf(out, "restored Redis point %s (%s, %s keys) to %s: %s, in %s\n", q.ID.Short(), q.Resource, q.Meta[redis.MetaKeys],
			o.target, humanBytes(q.Summary.Bytes), time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(out, "start redis-server with its dir and dbfilename naming this file (appendonly no, or let it rewrite the AOF after loading)\n")
		return nil

	case sourceMySQL:
		return restoreMySQL(cmd, r, p, jsonOut, at, o)
	}
	return errs.Errorf("restore", errs.Internal, "point kind %q has no restore", p.Kind)
}

// describeTarget says where a PostgreSQL recovery stops.
func describeTarget(t postgres.Target) string {
	incl := "inclusive"
	if t.Exclusive {
		incl = "exclusive"
	}
	switch {
	case t.Time != nil:
		return "time " + t.Time.UTC().Format(time.RFC3339Nano) + " (" + incl + ")"
	case t.LSN != "":
		return "LSN " + t.LSN + " (" + incl + ")"
	case t.XID != "":
		return "transaction " + t.XID + " (" + incl + ")"
	case t.Name != "":
		return "restore point " + fmt.Sprintf("%q", t.Name) + " (" + incl + ")"
	}
	return "the end of the stored WAL"
}

// restoreMySQL restores MySQL/MariaDB point p's resource into o.target: a live server
// (mysql:// URL) or a directory for a physical backup.
func restoreMySQL(cmd *cobra.Command, r *vault.Repository, p *vault.Point, jsonOut bool, at *time.Time, o dbRestoreOpts) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	start := time.Now()
	if err := refuseFlags(cmd, "a MySQL/MariaDB restore", "lsn", "xid", "restore-point", "exclusive", "overwrite"); err != nil {
		return err
	}
	t := mysql.Target{Time: at}
	filePos := cmd.Flags().Changed("binlog-file") || cmd.Flags().Changed("binlog-pos")
	switch {
	case filePos && at != nil:
		return errs.Errorf("restore", errs.Invalid, "--at and --binlog-file/--binlog-pos are two restore targets").
			WithHint("give either a time (--at) or a binlog position (--binlog-file F --binlog-pos N)")
	case filePos && (o.binlogFile == "" || !cmd.Flags().Changed("binlog-pos")):
		return errs.Errorf("restore", errs.Invalid, "a binlog position needs both --binlog-file and --binlog-pos").
			WithHint("give them as SHOW MASTER STATUS shows them, e.g. --binlog-file mysql-bin.000042 --binlog-pos 1337")
	case filePos:
		t.File, t.Pos = o.binlogFile, o.binlogPos
	case at == nil && o.explicit:
		// A point ID stands for the state that point reaches: a backup's snapshot, or the
		// end of a binlog piece.
		t.File, t.Pos = mysqlPointEnd(p)
		if t.File == "" {
			return errs.Errorf("restore", errs.Corrupt, "MySQL point %s records no binlog position", p.ID.Short()).
				WithHint("restore 'latest --resource " + p.Resource + "' with --at TIME instead")
		}
	}
	target := o.target
	var shown string
	logical := isMySQLURL(target)
	if logical {
		// The plugin tells a server from a directory by the lower-case scheme.
		scheme := urlScheme.FindStringSubmatch(target)[1]
		target = strings.ToLower(scheme) + target[len(scheme):]
		shown = redactURL(target)
	} else {
		if o.force {
			return errs.Errorf("restore", errs.Invalid, "--force applies to a server target (mysql://…); a directory target must be empty or missing").
				WithHint("leave out --force, or choose an empty directory")
		}
		abs, err := filepath.Abs(target)
		if err != nil {
			return errs.E("restore", errs.Invalid, err)
		}
		target, shown = abs, abs
	}
	res, err := mysql.Restore(ctx, mysql.FromVault(r), p.Resource, target, t, mysql.RestoreOptions{AllowNonEmpty: o.force})
	if err != nil {
		return err
	}
	goal := describeMySQLTarget(t)
	took := time.Since(start)
	if jsonOut {
		return writeJSONLine(out, map[string]any{
			"message_type": "summary", "kind": sourceMySQL, "resource": p.Resource, "target": shown,
			"base": res.Base.ID.String(), "base_kind": res.Base.Kind, "bytes": res.Bytes, "binlog_files": res.BinlogFiles,
			"recovery_target": goal,
			"span": map[string]any{"from": res.Span.From, "to": res.Span.To,
				"from_binlog": fmt.Sprintf("%s:%d", res.Span.StartFile, res.Span.StartPos),
				"to_binlog":   fmt.Sprintf("%s:%d", res.Span.EndFile, res.Span.EndPos)},
			"seconds": took.Seconds(),
		})
	}
	if logical {
		fmt.Fprintf(out, "restored MySQL/MariaDB resource %s into %s: dump %s (%s) and %d binlog files replayed to %s, in %s\n",
			p.Resource, shown, res.Base.ID.Short(), humanBytes(res.Bytes), res.BinlogFiles, goal, took.Round(time.Millisecond))
		fmt.Fprintf(out, "restorable with this dump: %s .. %s\n", formatTime(res.Span.From), formatTime(res.Span.To))
		fmt.Fprintf(out, "the dump holds the mysql system database: the source's users and grants apply after FLUSH PRIVILEGES or a restart of the target\n")
		return nil
	}
	fmt.Fprintf(out, "restored MySQL/MariaDB resource %s to %s: physical backup %s (%s) extracted and prepared, in %s\n",
		p.Resource, shown, res.Base.ID.Short(), humanBytes(res.Bytes), took.Round(time.Millisecond))
	if res.BinlogFiles > 0 {
		replay := filepath.Join(shown, "rewind-binlog", "REPLAY")
		fmt.Fprintf(out, "start a server on it (as the mysql user: chown -R mysql: %s), then run the command in %s to replay %d binlog files to %s\n",
			shown, replay, res.BinlogFiles, goal)
	} else {
		fmt.Fprintf(out, "it holds the state of the backup; start a server on it as the mysql user (chown -R mysql: %s)\n", shown)
	}
	return nil
}

// mysqlPointEnd returns the binlog position MySQL point p reaches: a backup's snapshot
// position, or the end of a binlog piece; "" when its meta lacks it.
func mysqlPointEnd(p *vault.Point) (string, uint64) {
	key := mysql.MetaBinlogPos
	if p.Kind == mysql.KindBinlog {
		key = mysql.MetaEndPos
	}
	pos, err := strconv.ParseUint(p.Meta[key], 10, 64)
	if err != nil {
		return "", 0
	}
	return p.Meta[mysql.MetaBinlogFile], pos
}

// describeMySQLTarget says where a MySQL restore stops.
func describeMySQLTarget(t mysql.Target) string {
	switch {
	case t.Time != nil:
		return "time " + t.Time.UTC().Format(time.RFC3339Nano) + " (inclusive, to the second)"
	case t.File != "":
		return fmt.Sprintf("binlog position %s:%d (exclusive)", t.File, t.Pos)
	}
	return "the end of the stored binlog"
}
