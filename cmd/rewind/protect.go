package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

func newProtectCmd() *cobra.Command {
	var (
		vo         vaultOpts
		resource   string
		host       string
		tags       []string
		slot       string
		flushEvery time.Duration
	)
	cmd := &cobra.Command{
		Use:   "protect [flags] DATABASE-URL",
		Short: "Protect a database continuously, in the foreground",
		Long: `Protect a database continuously until interrupted: every --flush-every, what changed is
stored as a point, so the database can be restored to any moment between its first backup
and the last flush ('rewind points' shows the range; 'rewind restore --at TIME').

PostgreSQL (postgres://user:password@host:port/, a role with REPLICATION): WAL is streamed
from a physical replication slot (--slot, default rewind_<resource>; created if missing: the
server keeps WAL the vault does not hold yet, so drop the slot when you stop protecting).
When the vault has no base backup of the resource, one is taken first.
SQLite (sqlite:///abs/path.db, in WAL mode): committed transactions are shipped from the
-wal file; a snapshot is taken first when the vault's last point cannot be continued.
MySQL/MariaDB (mysql://user:password@host:3306/, the server with log_bin): the binary log
is copied with mariadb-binlog as it grows and stored after checking every event. When the
vault has no backup of the resource a dump is taken first; when the server no longer has
the binlog where the vault's ends (purged before it was stored), a new dump is taken and
the hole stays visible as a gap in 'rewind points'. Binlog times have one-second resolution.

The vault's shared lock is held (and refreshed) while it runs. SIGINT or SIGTERM stores
what was received and exits 0. On a terminal each flush prints a status line; --json prints
JSON lines (start, base, flush, stopped). Redis and files are not continuous: schedule
'rewind backup' for them.`,
		Example: `  rewind protect --vault /srv/vaults/main --resource orders-db 'postgres://rewind:secret@db1:5432/?sslmode=require'
  rewind protect --vault /srv/vaults/main --flush-every 5s sqlite:///srv/app/app.db
  rewind protect --vault /srv/vaults/main --resource shop-mysql 'mysql://backup:secret@db2:3306/'
  rewind protect --vault /srv/vaults/main --resource orders-db --json postgres://rewind@db1/ > protect.log`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseSource("protect", args)
			if err != nil {
				return err
			}
			if src == nil {
				if len(args) == 0 {
					return errs.Errorf("protect", errs.Invalid, "no database given").
						WithHint("give one database URL: postgres://…, mysql://… or sqlite:///abs/path.db")
				}
				return errs.Errorf("protect", errs.Invalid, "%q is a path: files cannot be protected continuously", args[0]).
					WithHint("schedule 'rewind backup PATH…' instead; protect takes postgres://…, mysql://… or sqlite:///abs/path.db")
			}
			if !src.continuous() {
				return errs.Errorf("protect", errs.Invalid, "%s cannot be protected continuously: a Redis backup is one RDB snapshot", src.display).
					WithHint("schedule 'rewind backup " + src.display + "' instead")
			}
			switch src.kind {
			case sourceSQLite:
				if err := refuseFlags(cmd, "SQLite protection", "slot"); err != nil {
					return err
				}
			case sourceMySQL:
				if err := refuseFlags(cmd, "MySQL/MariaDB protection (the binlog is read as a replica, without a slot)", "slot"); err != nil {
					return err
				}
			}
			if flushEvery <= 0 {
				return errs.Errorf("protect", errs.Invalid, "--flush-every %s: give a positive duration like 1s", flushEvery)
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			if resource == "" {
				resource = src.defaultResource()
			}
			pr := &protector{src: src, resource: resource, host: host, tags: tagMap, slot: slot, flushEvery: flushEvery,
				out: newStatusLines(cmd.OutOrStdout(), cmd.ErrOrStderr(), vo.json)}
			return src.scrub(pr.run(cmd.Context(), &vo))
		},
	}
	vo.register(cmd)
	vo.registerJSON(cmd, "print status as JSON lines")
	f := cmd.Flags()
	f.StringVar(&resource, "resource", "", "name of the protected resource (default postgres:HOST:PORT, mysql:HOST:PORT or sqlite:PATH)")
	f.StringVar(&host, "host", "", "host name recorded in the points (default: PostgreSQL's address, or this machine's)")
	f.StringArrayVar(&tags, "tag", nil, "add a tag key=value to the points (repeatable)")
	f.StringVar(&slot, "slot", "", "PostgreSQL: the physical replication slot (default rewind_<resource>)")
	f.DurationVar(&flushEvery, "flush-every", time.Second, "store what changed this often: the most data a failure can lose")
	return cmd
}

// protector runs one foreground continuous protection.
type protector struct {
	src        *dbSource
	resource   string
	host       string
	tags       map[string]string
	slot       string
	flushEvery time.Duration
	out        *statusLines
}

func (pr *protector) run(ctx context.Context, vo *vaultOpts) error {
	r, err := vo.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	// The lock's lease is refreshed in the background by the repository until Unlock; it is
	// released with a context of its own, since ctx ends with the signal that stops us.
	lock, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))
	loc, _ := vo.location()
	pr.out.event("start", fmt.Sprintf("protecting %s as %q into %s; stop with Ctrl-C", pr.src.display, pr.resource, loc),
		map[string]any{"resource": pr.resource, "source": pr.src.display, "kind": pr.src.kind})
	switch pr.src.kind {
	case sourcePostgres:
		err = pr.postgres(ctx, r)
	case sourceSQLite:
		err = pr.sqlite(ctx, r)
	case sourceMySQL:
		err = pr.mysql(ctx, r)
	default:
		err = errs.Errorf("protect", errs.Internal, "source kind %q is not continuous", pr.src.kind)
	}
	if err != nil {
		return err
	}
	pr.out.event("stopped", fmt.Sprintf("stopped protecting %q; everything received is stored", pr.resource),
		map[string]any{"resource": pr.resource})
	return nil
}

func (pr *protector) postgres(ctx context.Context, r *vault.Repository) error {
	v := postgres.FromVault(r)
	pts, err := r.Points(ctx)
	if err != nil {
		return err
	}
	hasBase := false
	for _, p := range pts {
		if p.Resource == pr.resource && p.Kind == postgres.KindBase {
			hasBase = true
		}
	}
	if !hasBase {
		pr.out.event("base", fmt.Sprintf("the vault has no base backup of %q: taking one first", pr.resource),
			map[string]any{"resource": pr.resource})
		start := time.Now()
		p, err := postgres.BaseBackup(ctx, v, pr.src.url, postgres.BaseOptions{Resource: pr.resource, Host: pr.host, Tags: pr.tags})
		if err != nil {
			return err
		}
		pr.out.event("base", fmt.Sprintf("base backup %s saved: LSN %s, %s in %s", p.ID.Short(), p.Meta[postgres.MetaEndLSN],
			humanBytes(p.Summary.Bytes), time.Since(start).Round(time.Millisecond)),
			map[string]any{"resource": pr.resource, "point": p.ID.String(), "end_lsn": p.Meta[postgres.MetaEndLSN], "bytes": p.Summary.Bytes})
	}
	return postgres.Stream(ctx, v, pr.src.url, postgres.StreamOptions{
		Resource: pr.resource, Slot: pr.slot, Host: pr.host, Tags: pr.tags, FlushEvery: pr.flushEvery,
		OnFlush: func(p *vault.Point) {
			to := p.Time
			if p.Range != nil {
				to = p.Range.To
			}
			pr.out.flush(fmt.Sprintf("%s WAL %s..%s (%s) timeline %s, restorable to %s",
				p.ID.Short(), p.Meta[postgres.MetaStartLSN], p.Meta[postgres.MetaEndLSN], humanBytes(p.Summary.Bytes),
				p.Meta[postgres.MetaTimeline], to.UTC().Format(time.RFC3339Nano)),
				map[string]any{"resource": pr.resource, "point": p.ID.String(), "start_lsn": p.Meta[postgres.MetaStartLSN],
					"end_lsn": p.Meta[postgres.MetaEndLSN], "timeline": p.Meta[postgres.MetaTimeline],
					"bytes": p.Summary.Bytes, "to": to})
		},
	})
}

// sqlite drives a Streamer like sqlite.Stream does, reporting after each tick that stored
// a point.
func (pr *protector) sqlite(ctx context.Context, r *vault.Repository) error {
	opts := sqlite.StreamOptions{Resource: pr.resource, Host: hostOr(pr.host), Tags: pr.tags, FlushEvery: pr.flushEvery}
	s, err := sqlite.OpenStream(ctx, sqlite.FromVault(r), pr.src.path, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	var seen sqlite.StreamStats
	report := func() {
		st := s.Stats
		if st.Points == seen.Points && st.Snapshots == seen.Snapshots {
			return
		}
		seen = st
		now := time.Now().UTC()
		pr.out.flush(fmt.Sprintf("%d transactions shipped in %d points (%d snapshots), restorable to %s",
			st.Commits, st.Points, st.Snapshots, now.Format(time.RFC3339)),
			map[string]any{"resource": pr.resource, "commits": st.Commits, "points": st.Points,
				"snapshots": st.Snapshots, "checkpoints": st.Checkpoints, "to": now})
	}
	report()
	t := time.NewTicker(sqlite.DefaultPollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := s.Tick(fctx); err != nil {
				return err
			}
			if err := s.Flush(fctx); err != nil {
				return err
			}
			report()
			return nil
		case <-t.C:
			if err := s.Tick(ctx); err != nil {
				if ctx.Err() != nil {
					continue // stopping: the final tick stores what is pending
				}
				return err
			}
			report()
		}
	}
}

// mysql ships the server's binary log like mysql.Stream does, reporting every piece
// stored. A dump is taken first when the vault has no backup of the resource, and when
// the server no longer has the binlog where the vault's ends.
func (pr *protector) mysql(ctx context.Context, r *vault.Repository) error {
	v := mysql.FromVault(r)
	pts, err := r.Points(ctx)
	if err != nil {
		return err
	}
	hasBase := false
	for _, p := range pts {
		if p.Resource == pr.resource && (p.Kind == mysql.KindDump || p.Kind == mysql.KindPhysical) {
			hasBase = true
		}
	}
	if !hasBase {
		if err := pr.mysqlDump(ctx, v, fmt.Sprintf("the vault has no backup of %q: taking a dump first", pr.resource), ""); err != nil {
			return err
		}
	}
	opts := mysql.StreamOptions{Resource: pr.resource, Host: hostOr(pr.host), Tags: pr.tags, FlushEvery: pr.flushEvery}
	st, err := mysql.OpenStream(ctx, v, pr.src.url, opts)
	if hasBase && errs.Is(err, errs.NotFound) {
		// The binlog after the vault's end was purged before it was stored: what it held
		// is lost for point-in-time recovery. A new dump starts a new span; the hole stays
		// visible as the older span's gap.
		if err := pr.mysqlDump(ctx, v, fmt.Sprintf("cannot continue the stored binlog (%v): taking a new dump", err), err.Error()); err != nil {
			return err
		}
		st, err = mysql.OpenStream(ctx, v, pr.src.url, opts)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	t := time.NewTicker(pr.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			ps, err := st.Tick(fctx)
			pr.mysqlReport(ps)
			return err
		case <-t.C:
			ps, err := st.Tick(ctx)
			pr.mysqlReport(ps)
			if err != nil {
				if ctx.Err() != nil {
					continue // stopping: the final tick stores what is pending
				}
				return err
			}
		}
	}
}

// mysqlDump takes the dump a binlog stream starts from, announcing it with why (and the
// gap it follows, when there is one).
func (pr *protector) mysqlDump(ctx context.Context, v mysql.Vault, why, gap string) error {
	fields := map[string]any{"resource": pr.resource}
	if gap != "" {
		fields["gap"] = gap
	}
	pr.out.event("base", why, fields)
	start := time.Now()
	res, err := mysql.Backup(ctx, v, pr.src.url, mysql.BackupOptions{Resource: pr.resource, Host: hostOr(pr.host), Tags: pr.tags})
	if err != nil {
		return err
	}
	pos := fmt.Sprintf("%s:%d", res.BinlogFile, res.BinlogPos)
	pr.out.event("base", fmt.Sprintf("dump %s saved: binlog %s, %s in %s", res.Point.ID.Short(), pos, humanBytes(res.Bytes),
		time.Since(start).Round(time.Millisecond)),
		map[string]any{"resource": pr.resource, "point": res.Point.ID.String(), "binlog": pos, "bytes": res.Bytes})
	return nil
}

// mysqlReport prints one flush line per binlog piece stored.
func (pr *protector) mysqlReport(ps []*vault.Point) {
	for _, p := range ps {
		to := p.Time
		if p.Range != nil {
			to = p.Range.To
		}
		pr.out.flush(fmt.Sprintf("%s binlog %s %s..%s (%s events, %s), restorable to %s",
			p.ID.Short(), p.Meta[mysql.MetaBinlogFile], p.Meta[mysql.MetaStartPos], p.Meta[mysql.MetaEndPos],
			p.Meta[mysql.MetaEvents], humanBytes(p.Summary.Bytes), to.UTC().Format(time.RFC3339Nano)),
			map[string]any{"resource": pr.resource, "point": p.ID.String(), "binlog_file": p.Meta[mysql.MetaBinlogFile],
				"start_pos": p.Meta[mysql.MetaStartPos], "end_pos": p.Meta[mysql.MetaEndPos], "events": p.Meta[mysql.MetaEvents],
				"bytes": p.Summary.Bytes, "to": to})
	}
}

// statusLines prints protect's events: JSON lines with --json; else text, flush lines only
// when standard output is a terminal (start and stop always, on standard error).
type statusLines struct {
	mu      sync.Mutex
	out     io.Writer
	errw    io.Writer
	json    bool
	flushes bool
}

func newStatusLines(out, errw io.Writer, jsonOut bool) *statusLines {
	return &statusLines{out: out, errw: errw, json: jsonOut, flushes: jsonOut || term.IsTerminal(int(os.Stdout.Fd()))}
}

func (s *statusLines) event(typ, text string, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.json {
		s.writeJSON(typ, fields)
		return
	}
	fmt.Fprintf(s.errw, "%s %s\n", time.Now().Format("15:04:05"), text)
}

func (s *statusLines) flush(text string, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.json:
		s.writeJSON("flush", fields)
	case s.flushes:
		fmt.Fprintf(s.out, "%s %s\n", time.Now().Format("15:04:05"), text)
	}
}

func (s *statusLines) writeJSON(typ string, fields map[string]any) {
	line := map[string]any{"message_type": typ, "time": time.Now().UTC()}
	for k, v := range fields {
		line[k] = v
	}
	// A status line that cannot be written (a closed pipe) must not stop the protection.
	_ = writeJSONLine(s.out, line)
}
