package jobs

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
	"github.com/rewind-dr/rewind/internal/protect/files"
	"github.com/rewind-dr/rewind/internal/protect/mysql"
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
	case config.KindMySQL:
		return mysql.KindDump, nil
	}
	return "", errs.Errorf("jobs.backup", errs.Invalid, "resources of kind %s cannot be backed up by Rewind", k).
		WithHint("the kinds are files, postgres, sqlite, redis and mysql")
}

// backupResource backs res up into repo (locked by the caller) as host and saves the
// point: files are walked and chunked; a PostgreSQL database gets a base backup over the
// replication protocol, an SQLite database a consistent snapshot, Redis its RDB, a
// MySQL/MariaDB server a consistent dump with its binlog position.
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
	case config.KindMySQL:
		var br *mysql.BackupResult
		br, err = mysql.Backup(ctx, mysql.FromVault(repo), res.URL, mysql.BackupOptions{Resource: res.Name, Host: host, Tags: tags, Now: now})
		if err == nil {
			p = br.Point
		}
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
// stop there; an SQLite file as of params.At; a Redis RDB file; a MySQL/MariaDB dump loaded
// into the live server params.Target names (mysql://…, which must hold no databases of its
// own) and its binlog replayed to params.At, or a physical backup prepared in the
// directory params.Target with the binlog to replay beside it. It returns the point the
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
	case mysql.KindDump, mysql.KindPhysical, mysql.KindBinlog:
	default:
		if isServerURL(params.Target) {
			return nil, Counts{}, errs.Errorf(op, errs.Invalid, "point %s is of kind %s: only MySQL/MariaDB points restore into a server URL (%s)", p.ID.Short(), p.Kind, displayTarget(params.Target)).
				WithHint("give an absolute path as the target")
		}
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
	case mysql.KindDump, mysql.KindPhysical, mysql.KindBinlog:
		t := mysql.Target{Time: params.At}
		if params.At == nil && !strings.EqualFold(strings.TrimSpace(params.Point), "latest") {
			// A point ID stands for the state that point reaches: a backup's snapshot, or
			// the end of a binlog piece.
			key := mysql.MetaBinlogPos
			if p.Kind == mysql.KindBinlog {
				key = mysql.MetaEndPos
			}
			pos, err := strconv.ParseUint(p.Meta[key], 10, 64)
			if err != nil || p.Meta[mysql.MetaBinlogFile] == "" {
				return nil, Counts{}, errs.Errorf(op, errs.Corrupt, "MySQL point %s records no binlog position", p.ID.Short()).
					WithHint("restore latest with a time instead")
			}
			t.File, t.Pos = p.Meta[mysql.MetaBinlogFile], pos
		}
		target, err := serverTarget(params.Target)
		if err != nil {
			return nil, Counts{}, err
		}
		rr, err := mysql.Restore(ctx, mysql.FromVault(repo), resource, target, t, mysql.RestoreOptions{})
		if err != nil {
			return nil, Counts{}, err
		}
		return rr.Base, Counts{BytesRead: int64(rr.Bytes), Files: int64(1 + rr.BinlogFiles)}, nil
	}
	return nil, Counts{}, errs.Errorf(op, errs.Invalid, "point %s is of kind %s, which the job runner does not restore", p.ID.Short(), p.Kind)
}

// validRestoreTarget reports whether target can be a restore job's target: an absolute
// path, or a MySQL/MariaDB server URL (mysql://, mariadb://) for a logical MySQL restore.
func validRestoreTarget(target string) bool {
	return filepath.IsAbs(target) || isServerURL(target)
}

// isServerURL reports whether target is a mysql:// or mariadb:// URL.
func isServerURL(target string) bool {
	return strings.HasPrefix(target, "mysql://") || strings.HasPrefix(target, "mariadb://")
}

// displayTarget is target as the catalog and messages show it: a server URL without its
// password (or its query, which may hold one); a path as it is.
func displayTarget(target string) string {
	if !isServerURL(target) && !strings.Contains(target, "://") {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}

// serverTarget turns a restore job's server URL into the one to connect to: the password
// is never in the job (params are stored in the catalog and shown by the API) but in the
// file the URL's password_file query parameter names, read now. A path is returned as is.
func serverTarget(target string) (string, error) {
	const op = "jobs.restore"
	if !isServerURL(target) {
		return target, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", errs.Errorf(op, errs.Invalid, "target %s is not a valid URL", displayTarget(target))
	}
	q := u.Query()
	file := q.Get("password_file")
	if file == "" || u.User == nil {
		return target, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", errs.Errorf(op, errs.Invalid, "the target's password file: %v", err).
			WithHint("the server reads password_file when the restore runs; check that it exists and is readable")
	}
	q.Del("password_file")
	u.RawQuery = q.Encode()
	u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(b), "\r\n"))
	return u.String(), nil
}

// checkPasswordFile refuses a server target whose password_file the server must not read
// for whoever started the job: a file readable by others than its owner (a password file
// is private), or one of the server's own secrets (vault passwords, S3 keys, API tokens),
// which would otherwise be sent to a server the job names.
func (r *Runner) checkPasswordFile(target string) error {
	const op = "jobs.restore"
	if !isServerURL(target) {
		return nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil // restoreParams reports it
	}
	file := u.Query().Get("password_file")
	if file == "" {
		return nil
	}
	if !filepath.IsAbs(file) {
		return errs.Errorf(op, errs.Invalid, "the target's password_file %q is not an absolute path", file)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return errs.Errorf(op, errs.Invalid, "the target's password file: %v", err).
			WithHint("create it on the server, readable by the server's user only (chmod 600)")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return errs.Errorf(op, errs.Invalid, "the target's password file %s is readable by others (mode %v)", file, fi.Mode().Perm()).
			WithHint("chmod 600 " + file)
	}
	secrets := []string{}
	for _, v := range r.env.Config.Vaults {
		secrets = append(secrets, v.PasswordFile)
		if v.S3 != nil {
			secrets = append(secrets, v.S3.AccessKeyFile, v.S3.SecretKeyFile)
		}
	}
	for _, t := range r.env.Config.Auth.Tokens {
		secrets = append(secrets, t.TokenFile)
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if si, err := os.Stat(s); err == nil && os.SameFile(si, fi) {
			return errs.Errorf(op, errs.Invalid, "the target's password_file %s is one of this server's own secrets", file).
				WithHint("give the target server's password its own file")
		}
	}
	return nil
}
