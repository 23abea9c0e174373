// Package vault is Rewind's storage engine: it turns blobs, trees and recovery points into
// encrypted, deduplicated, compressed files on a backend, in the format specified in
// docs/FORMAT.md. It owns keys and passwords, the config, packs and their index, point
// manifests, lease-based locks, check, prune and copy between vaults. It moves bytes only
// through backend.Backend, reads of a tree only its Type, Content and Subtree fields, and
// must never know how a resource is walked or restored (that belongs to the plugins) nor
// return a byte it has not authenticated.
package vault
