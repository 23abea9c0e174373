// Package pack encodes and decodes pack files: many individually sealed blobs followed by a
// sealed header that lists them and a fixed-size trailer. It builds packs in memory and
// parses packs (or their headers alone) read back from storage, checking every length
// against hard caps so that no input can make it panic or allocate without bound. Package
// pack does not compress, choose, upload or index blobs: that is the vault's job.
package pack
