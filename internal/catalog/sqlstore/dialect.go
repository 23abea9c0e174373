package sqlstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect holds what differs between SQLite and PostgreSQL. Queries use $1-style
// placeholders, which both drivers accept.
type dialect struct {
	name string
	// forUpdate is appended to a SELECT whose row the transaction then updates. SQLite
	// needs none: its transactions hold the database's write lock from BEGIN IMMEDIATE.
	forUpdate string
	// textTime stores times as fixed-width UTC text (SQLite has no time type).
	textTime bool
	// advisoryLock serializes migrations between processes (PostgreSQL); empty for SQLite,
	// whose migration transaction holds the write lock.
	advisoryLock    string
	migrationsTable string
}

var (
	sqliteDialect = dialect{
		name:     "sqlite",
		textTime: true,
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`,
	}
	postgresDialect = dialect{
		name:      "postgres",
		forUpdate: " FOR UPDATE",
		// The key is the first 8 bytes of "rewind-catalog" read as an integer: any constant
		// works as long as every Rewind server uses the same one.
		advisoryLock: "SELECT pg_advisory_xact_lock(8243122741621125475)",
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL
)`,
	}
)

// sqliteTime is the text form of times in SQLite: fixed width, so that comparing and
// sorting the text compares and sorts the times.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// time returns the query argument for t.
func (d dialect) time(t time.Time) any {
	t = t.UTC()
	if d.textTime {
		return t.Format(sqliteTime)
	}
	return t
}

// timePtr returns the query argument for t, NULL when nil.
func (d dialect) timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.time(*t)
}

// timeCol scans a time column of either dialect into *time.Time (NOT NULL columns) or
// **time.Time (nullable columns).
type timeCol struct{ dst any }

func (c timeCol) Scan(v any) error {
	var t time.Time
	switch x := v.(type) {
	case nil:
		if p, ok := c.dst.(**time.Time); ok {
			*p = nil
			return nil
		}
		return fmt.Errorf("NULL in a NOT NULL time column")
	case time.Time:
		t = x.UTC()
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
			return fmt.Errorf("time column: %w", err)
		}
	case []byte:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, string(x)); err != nil {
			return fmt.Errorf("time column: %w", err)
		}
	default:
		return fmt.Errorf("time column holds %T", v)
	}
	t = t.UTC()
	switch p := c.dst.(type) {
	case *time.Time:
		*p = t
	case **time.Time:
		*p = &t
	}
	return nil
}

// jsonCol scans a JSON text column (NULL allowed) into dst with json.Unmarshal.
type jsonCol struct{ dst any }

func (c jsonCol) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		return fmt.Errorf("JSON column holds %T", v)
	}
	if raw, ok := c.dst.(*json.RawMessage); ok {
		*raw = append(json.RawMessage(nil), b...)
		return nil
	}
	if err := json.Unmarshal(b, c.dst); err != nil {
		return fmt.Errorf("JSON column: %w", err)
	}
	return nil
}

// jsonArg returns the JSON text of v for a JSON column.
func jsonArg(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// nullString returns NULL for "" (columns where unset is NULL, such as a unique key).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullStringCol scans a nullable text column into a string, NULL as "".
type nullStringCol struct{ dst *string }

func (c nullStringCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.dst = ""
	case string:
		*c.dst = x
	case []byte:
		*c.dst = string(x)
	default:
		return fmt.Errorf("text column holds %T", v)
	}
	return nil
}

// where builds a WHERE clause and its arguments with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

// in adds "col IN (…)" for the values.
func (w *where) in(col string, vals []string) {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = w.arg(v)
	}
	w.add(col + " IN (" + strings.Join(ph, ", ") + ")")
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit returns " LIMIT n" for n > 0.
func (w *where) limit(n int) string {
	if n <= 0 {
		return ""
	}
	return " LIMIT " + w.arg(n)
}
