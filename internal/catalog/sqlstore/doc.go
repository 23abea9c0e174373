// Package sqlstore implements catalog.Store on SQLite (modernc.org/sqlite, pure Go: the
// default, a file in the data directory) and on PostgreSQL (pgx, for several servers sharing
// one catalog), with one implementation over database/sql and a small dialect for what
// differs: time and JSON column types, row locks and the migration lock. Open applies the
// embedded, numbered migrations of its dialect. It classifies database errors into errs
// kinds by driver code (SQLite extended result codes, PostgreSQL SQLSTATE), never by message
// text. It must not hold business rules (those live in package catalog) nor retry failed
// transactions.
package sqlstore
