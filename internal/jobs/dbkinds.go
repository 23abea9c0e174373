package jobs

import (
	"context"
	"time"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/postgres"
	"github.com/rewind-dr/rewind/internal/protect/redis"
	"github.com/rewind-dr/rewind/internal/protect/sqlite"
	"github.com/rewind-dr/rewind/internal/vault"
)

// pointKindOf is the kind of the point a backup job of a resource of kind k makes.
func pointKindOf(k config.Kind) (string, error) {
	switch k {
	case config.KindFiles:
		return vault.KindFiles, nil
	case config.KindPostgres:
		return postgres.KindBase, nil
	case config.KindSQLite:
		return sqlite.KindSnapshot, nil
	case config.KindRedis:
		return redis.KindRDB, nil
	}
	return "", errs.Errorf("jobs.backup", errs.Invalid, "resources of kind %s cannot be backed up by Rewind yet", k).
		WithHint("back this resource up with its own tool (for MySQL/MariaDB: mariadb-backup or mysqldump into `rewind backup --stdin`)")
}

// backupResource backs res up into repo (locked by the caller) as host and saves the
// point: files are walked and chunked; a PostgreSQL database gets a base backup over the
// replication protocol, an SQLite database a consistent snapshot, Redis its RDB.
func backupResource(ctx context.Context, repo *vault.Repository, res config.Resource, tags map[string]string, host string,
	now func() time.Time, progress files.Progress) (*vault.Point, Counts, error) {
	if res.Kind == config.KindFiles {
		start := now()
		vp, br, err := backupFiles(ctx, repo, res, tags, host, start, now, progress)
		if err != nil {
			return nil, Counts{}, err
		}
		return vp, backupCounts(br), nil
	}
	var (
		p   *vault.Point
		err error
	)
	switch res.Kind {
	case config.KindPostgres:
		p, err = postgres.BaseBackup(ctx, postgres.FromVault(repo), res.URL, postgres.BaseOptions{
			Resource: res.Name, Host: host, Tags: tags, Now: now,
			Progress: func(_ string, n uint64) { progress(files.Status{Bytes: n}) },
		})
	case config.KindSQLite:
		p, err = sqlite.Snapshot(ctx, sqlite.FromVault(repo), res.Path, sqlite.SnapshotOptions{Resource: res.Name, Host: host, Tags: tags, Now: now})
	case config.KindRedis:
		p, err = redis.Backup(ctx, redis.FromVault(repo), res.URL, redis.BackupOptions{Resource: res.Name, Host: host, Tags: tags, Now: now})
	default:
		_, err = pointKindOf(res.Kind)
	}
	if err != nil {
		return nil, Counts{}, err
	}
	return p, Counts{BytesRead: int64(p.Summary.Bytes), BytesTotal: int64(p.Summary.Bytes), Files: int64(p.Summary.Files)}, nil
}

// restoreResource restores what params names from repo (locked by the caller) into
// params.Target, by the kind of the resource's points: a files tree into a directory; a
// PostgreSQL data directory set to recover to params.At (or to the end of the WAL) and
// stop there; an SQLite file as of params.At; a Redis RDB file. It returns the point the
// restore started from.
func restoreResource(ctx context.Context, repo *vault.Repository, resource string, params RestoreParams, progress files.Progress) (*vault.Point, Counts, error) {
	const op = "jobs.restore"
	p, err := repo.FindPoint(ctx, params.Point, resource)
	if err != nil {
		return nil, Counts{}, err
	}
	if resource == "" {
		resource = p.Resource
	}
	switch p.Kind {
	case vault.KindFiles, vault.KindStream:
		if params.At != nil {
			return nil, Counts{}, errs.Errorf(op, errs.Invalid, "point %s is of kind %s: a time applies to database points only", p.ID.Short(), p.Kind)
		}
		return restoreFiles(ctx, repo, p, params, progress)
	case postgres.KindBase, postgres.KindWAL:
		rr, err := postgres.Restore(ctx, postgres.FromVault(repo), resource, params.Target, postgres.Target{Time: params.At}, postgres.RestoreOptions{})
		if err != nil {
			return nil, Counts{}, err
		}
		return rr.Base, Counts{BytesRead: int64(rr.Bytes), Files: int64(rr.Files)}, nil
	case sqlite.KindSnapshot, sqlite.KindWAL:
		rr, err := sqlite.Restore(ctx, sqlite.FromVault(repo), resource, params.Target, sqlite.RestoreOptions{At: params.At})
		if err != nil {
			return nil, Counts{}, err
		}
		base, err := repo.LoadPoint(ctx, rr.Snapshot)
		if err != nil {
			return nil, Counts{}, err
		}
		return base, Counts{BytesRead: int64(rr.Pages) * int64(rr.PageSize), Files: 1}, nil
	case redis.KindRDB:
		if params.At != nil {
			return nil, Counts{}, errs.Errorf(op, errs.Invalid, "Redis points are snapshots: restore one by its ID or latest, without a time")
		}
		rp, err := redis.Restore(ctx, redis.FromVault(repo), resource, params.Target, redis.RestoreOptions{Point: p.ID})
		if err != nil {
			return nil, Counts{}, err
		}
		return rp, Counts{BytesRead: int64(rp.Summary.Bytes), Files: 1}, nil
	}
	return nil, Counts{}, errs.Errorf(op, errs.Invalid, "point %s is of kind %s, which the job runner does not restore", p.ID.Short(), p.Kind)
}
