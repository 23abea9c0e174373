// Package files is Rewind's resource plugin for directory trees: it backs up files,
// directories, symlinks, hard links, sparse files, FIFOs, devices and sockets with their
// owners, modes, times and extended attributes into vault blobs (data chunks and tree
// listings), restores such a tree into a target directory, and lists it. It talks to the vault
// only through the small Store interface and never knows about packs, indexes, encryption or
// catalogs; on restore it must never write outside the target directory nor follow a symlink it
// finds there.
package files
