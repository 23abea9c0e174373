// Package local stores a vault in a directory of the local file system (or a mounted
// network share), one file per backend handle, in the layout of backend.RelPath. Every Save
// is durable and atomic (temporary file, fsync, rename, directory fsync). It only moves
// bytes: it must not interpret file contents, take locks, cache or retry.
package local
