// Package sqlite is Rewind's resource plugin for SQLite databases in WAL mode: it stores
// consistent snapshots of a live database (sqlite-snapshot points), ships the committed
// frames of its write-ahead log continuously (sqlite-wal points chained to a snapshot, each
// with the restorable time range it covers), and restores the database as of any time in
// that range into a new file that passes PRAGMA integrity_check. It reads the database's
// pages through SQLite and its -wal file through one descriptor kept open, and holds read
// transactions and, briefly, the write lock on the database; it must never open and close a
// descriptor of its own on the database or -shm file (that drops SQLite's POSIX locks), never
// write pages of the protected database, change its journal mode, or restore a state it
// cannot prove continuous with a snapshot.
package sqlite
