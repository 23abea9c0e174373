// Package catalogtest is the conformance suite for catalog.Store implementations: every
// method, filters and cursors, DedupKey uniqueness under concurrency, forbidden
// transitions, events written and rolled back with the state change they announce, the time
// fixed per transaction, and concurrent transactions. Every implementation's tests call
// Run; the suite must not depend on any one implementation.
package catalogtest
