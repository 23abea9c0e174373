// Package index encodes and decodes index files (which blobs each pack holds, and which older
// index files a newer one supersedes) and keeps the vault's in-memory index: a compact map
// from blob to its pack and position. It never touches storage and never decides what to
// keep: loading, writing and pruning are the vault's job.
package index
