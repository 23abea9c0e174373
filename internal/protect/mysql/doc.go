// Package mysql is Rewind's resource plugin for MySQL and MariaDB servers: it takes a
// consistent backup of a whole server (a logical dump with mariadb-dump, or a physical
// copy with mariadb-backup on the database host) recording the binlog position of its
// snapshot, ships the binary log continuously with mariadb-binlog into the vault as
// pieces whose event framing, positions and checksums it verifies, computes the
// restorable range and its gaps, and restores to a time or binlog position by loading a
// backup and replaying the binlog up to the target. It talks to the vault only through its
// Vault interface and to the server only through the client tools and read-only queries;
// it must never import the catalog, events or the API, never write to the protected
// server, never put a password on a command line, and never write outside a restore's
// target (server or directory) and its own temporary directories.
package mysql
