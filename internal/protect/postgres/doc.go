// Package postgres is Rewind's resource plugin for PostgreSQL clusters: it takes base backups
// over the replication protocol (from a primary or a standby), ships WAL continuously from a
// physical replication slot or segment by segment as an archive_command/restore_command,
// verifies that the stored WAL is continuous from each base backup (timelines included), and
// restores a data directory set up to recover to a point in time, an LSN, a transaction or a
// named restore point and stop there. It stores everything as vault trees and points whose
// meta makes the vault self-describing, and talks to the vault only through its Vault
// interface; it must never import the catalog, events or the API, never write to the
// protected cluster (it only reads over replication connections), and never write outside a
// restore's target directory.
package postgres
