package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one numbered schema change: migrations/<dialect>/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in order. Versions start at 1 and have no
// gaps; a file that breaks that is a build mistake and fails every Open.
func migrations(d dialect) ([]migration, error) {
	dir := "migrations/" + d.name
	ents, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s is not NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: want version %d", m.version, m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion returns the newest schema version this build knows for dialect ("sqlite" or
// "postgres"), or 0 for an unknown dialect.
func SchemaVersion(dialectName string) int {
	for _, d := range []dialect{sqliteDialect, postgresDialect} {
		if d.name == dialectName {
			ms, err := migrations(d)
			if err != nil {
				return 0
			}
			return len(ms)
		}
	}
	return 0
}

// migrate applies the migrations the database lacks, all in one transaction so that a failure
// leaves the schema as it was. On PostgreSQL an advisory lock held until commit makes
// servers opening one catalog at once apply them one after the other; the second finds them
// applied. On SQLite the transaction begins IMMEDIATE and so holds the write lock.
func (s *Store) migrate(ctx context.Context) error {
	const op = "sqlstore.migrate"
	ms, err := migrations(s.d)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(op, err)
	}
	defer sqlTx.Rollback()
	if s.d.advisoryLock != "" {
		if _, err := sqlTx.ExecContext(ctx, s.d.advisoryLock); err != nil {
			return classify(op, err)
		}
	}
	if _, err := sqlTx.ExecContext(ctx, s.d.migrationsTable); err != nil {
		return classify(op, err)
	}
	var have int
	if err := sqlTx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return classify(op, err)
	}
	if have > len(ms) {
		return errs.Errorf(op, errs.Conflict, "catalog schema version %d is newer than this build knows (%d)", have, len(ms)).
			WithHint("run the Rewind version that last upgraded this catalog, or a newer one")
	}
	now := s.d.time(s.now())
	for _, m := range ms[have:] {
		if _, err := sqlTx.ExecContext(ctx, m.sql); err != nil {
			return errs.Errorf(op, errs.KindOf(classify(op, err)), "migration %04d_%s: %w", m.version, m.name, err)
		}
		if _, err := sqlTx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
			m.version, m.name, now); err != nil {
			return classify(op, err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return classify(op, err)
	}
	return nil
}
