package jobs

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rewind-dr/rewind/internal/catalog"
	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

// ContinuousTarget is a continuous resource this server protects, and the vault its log
// goes to.
type ContinuousTarget struct {
	Resource string
	Vault    string
}

// ContinuousTargets lists the resources with continuous: true that this server protects
// itself (no host, or this server's host), each with the vault of the first plan rule
// that selects it (a continuous rule first), by resource name.
func (r *Runner) ContinuousTargets() []ContinuousTarget {
	cfg := r.env.Config
	var out []ContinuousTarget
	for name, res := range cfg.Resources {
		if !res.Continuous || (res.Host != "" && res.Host != r.env.Host) {
			continue
		}
		if v := continuousVault(cfg, name); v != "" {
			out = append(out, ContinuousTarget{Resource: name, Vault: v})
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Resource < out[k].Resource })
	return out
}

func continuousVault(cfg *config.Config, resource string) string {
	var first string
	plans := make([]string, 0, len(cfg.Plans))
	for name := range cfg.Plans {
		plans = append(plans, name)
	}
	sort.Strings(plans)
	for _, pn := range plans {
		p := cfg.Plans[pn]
		for _, rn := range p.Resources {
			if rn != resource {
				continue
			}
			for _, rule := range p.Rules {
				if rule.PullFrom != "" {
					continue
				}
				if rule.Continuous {
					return rule.Vault
				}
				if first == "" {
					first = rule.Vault
				}
			}
		}
	}
	return first
}

// Protect runs the continuous protection of every ContinuousTargets resource until ctx
// ends: PostgreSQL WAL streamed from a replication slot (a base backup first when the
// vault has none), SQLite WAL frames shipped (with their snapshot), the MySQL/MariaDB
// binlog shipped (a dump first when the vault has none, or when the server no longer has
// the binlog where the vault's ends), each flushed to the vault about every second under
// a shared lock. A stream that fails is logged and started
// again after a pause that grows to a minute; the scheduled backups of the resource go on
// meanwhile. Protect returns when every stream has stopped.
func (q *Queue) Protect(ctx context.Context) {
	log := q.runner.log()
	var wg sync.WaitGroup
	for _, t := range q.runner.ContinuousTargets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pause := time.Second
			for ctx.Err() == nil {
				started := time.Now()
				err := q.runner.protect(ctx, t)
				if ctx.Err() != nil {
					q.runner.continuityEvent(context.WithoutCancel(ctx), t, "STOPPED", "")
					return
				}
				q.runner.continuityEvent(ctx, t, "BROKEN", errorText(err))
				if time.Since(started) > 5*time.Minute {
					pause = time.Second
				}
				log.Error("continuous protection stopped; starting it again", "resource", t.Resource, "vault", t.Vault, "err", err, "in", pause)
				select {
				case <-ctx.Done():
					return
				case <-time.After(pause):
				}
				pause = min(2*pause, time.Minute)
			}
		}()
	}
	wg.Wait()
}

// protect runs one stream of t until ctx ends or it fails.
func (r *Runner) protect(ctx context.Context, t ContinuousTarget) error {
	log := r.log()
	res, ok := r.env.Config.Resources[t.Resource]
	if !ok {
		return errs.Errorf("jobs.Protect", errs.NotFound, "resource %q is not configured", t.Resource)
	}
	repo, release, err := r.lockShared(ctx, t.Vault)
	if err != nil {
		return err
	}
	defer release()
	log.Info("continuous protection", "resource", t.Resource, "vault", t.Vault)
	r.continuityEvent(ctx, t, "ACTIVE", "")
	// Each flushed batch of log is recorded in the catalog (no event per batch: a second's
	// worth of log is not news), so the catalog knows the restorable range and the RPO
	// exposure follows it.
	// The last batch is flushed as ctx ends: it is recorded all the same.
	record := func(p *vault.Point) { r.recordPoint(context.WithoutCancel(ctx), t.Vault, p, false) }
	switch res.Kind {
	case config.KindPostgres:
		v := postgres.FromVault(repo)
		if _, err := repo.FindPoint(ctx, "latest", res.Name); errs.Is(err, errs.NotFound) {
			p, err := postgres.BaseBackup(ctx, v, res.URL, postgres.BaseOptions{Resource: res.Name, Host: r.env.Host, Tags: res.Tags, Now: r.env.Now})
			if err != nil {
				return err
			}
			r.recordPoint(ctx, t.Vault, p, true)
		} else if err != nil {
			return err
		}
		return postgres.Stream(ctx, v, res.URL, postgres.StreamOptions{Resource: res.Name, Host: r.env.Host, Tags: res.Tags, Now: r.env.Now, OnFlush: record})
	case config.KindSQLite:
		return sqlite.Stream(ctx, sqlite.FromVault(repo), res.Path, sqlite.StreamOptions{Resource: res.Name, Host: r.env.Host, Tags: res.Tags, Now: r.env.Now, OnFlush: record})
	case config.KindMySQL:
		return r.protectMySQL(ctx, repo, t, res, record)
	}
	return errs.Errorf("jobs.Protect", errs.Invalid, "resource %s is of kind %s: continuous protection is built for postgres, mysql and sqlite", res.Name, res.Kind)
}

// mysqlFlushEvery is how often the server stores the binlog that arrived.
const mysqlFlushEvery = time.Second

// protectMySQL ships res's binlog into repo until ctx ends or it fails, recording every
// piece. A dump is taken first when the vault has no backup of the resource, and when the
// server no longer has the binlog where the vault's ends: what that binlog held is lost
// for point-in-time recovery, the hole stays visible as a gap of the restorable range, and
// the new dump starts a new span.
func (r *Runner) protectMySQL(ctx context.Context, repo *vault.Repository, t ContinuousTarget, res config.Resource,
	record func(*vault.Point)) error {
	log := r.log()
	v := mysql.FromVault(repo)
	pts, err := repo.Points(ctx)
	if err != nil {
		return err
	}
	hasBase := false
	for _, p := range pts {
		if p.Resource == res.Name && (p.Kind == mysql.KindDump || p.Kind == mysql.KindPhysical) {
			hasBase = true
		}
	}
	dump := func() error {
		br, err := mysql.Backup(ctx, v, res.URL, mysql.BackupOptions{Resource: res.Name, Host: r.env.Host, Tags: res.Tags, Now: r.env.Now})
		if err != nil {
			return err
		}
		r.recordPoint(ctx, t.Vault, br.Point, true)
		return nil
	}
	if !hasBase {
		if err := dump(); err != nil {
			return err
		}
	}
	opts := mysql.StreamOptions{Resource: res.Name, Host: r.env.Host, Tags: res.Tags, Now: r.env.Now, FlushEvery: mysqlFlushEvery}
	st, err := mysql.OpenStream(ctx, v, res.URL, opts)
	if hasBase && errs.Is(err, errs.NotFound) {
		log.Warn("the stored binlog cannot be continued: taking a new dump", "resource", res.Name, "vault", t.Vault, "err", err)
		if err := dump(); err != nil {
			return err
		}
		st, err = mysql.OpenStream(ctx, v, res.URL, opts)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	tick := func(ctx context.Context) error {
		ps, err := st.Tick(ctx)
		for _, p := range ps {
			record(p)
		}
		return err
	}
	tk := time.NewTicker(mysqlFlushEvery)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			// The last batch is stored after ctx ends, with a bound of its own.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			return tick(fctx)
		case <-tk.C:
			if err := tick(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// recordPoint writes a point saved outside a job (continuous protection) into the catalog,
// with its AVAILABLE event when withEvent. A failure is logged: the point is in the vault,
// and a catalog rebuild finds it.
func (r *Runner) recordPoint(ctx context.Context, vaultName string, p *vault.Point, withEvent bool) {
	cp := catalogPoint(vaultName, p)
	err := r.env.Store.Tx(ctx, func(tx catalog.Tx) error {
		if err := tx.UpsertPoint(ctx, cp); err != nil {
			return err
		}
		if withEvent {
			return tx.AppendEvent(ctx, catalog.PointStateEvent(cp, catalog.PointAvailable, r.env.Site))
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		r.log().Error("recording a continuous point in the catalog", "resource", p.Resource, "point", p.ID.Short(), "err", err)
	}
}

// ContinuityDetailType is the detail type of the event announcing that a resource's
// continuous protection started (ACTIVE), failed (BROKEN: its restorable range stops
// growing until it runs again; the error says why) or stopped with the server (STOPPED).
const ContinuityDetailType = "Continuous Protection State Change"

func (r *Runner) continuityEvent(ctx context.Context, t ContinuousTarget, state, msg string) {
	detail := map[string]string{"resource": t.Resource, "vault": t.Vault, "state": state, "host": r.env.Host}
	if msg != "" {
		detail["error"] = msg
	}
	e := &catalog.Event{Source: catalog.EventSource, DetailType: ContinuityDetailType, Site: r.env.Site,
		Resources: []string{t.Resource}, Detail: mustParams(detail)}
	err := r.env.Store.Tx(ctx, func(tx catalog.Tx) error { return tx.AppendEvent(ctx, e) })
	if err != nil {
		r.log().Error("recording a continuous protection event", "resource", t.Resource, "state", state, "err", err)
	}
}
