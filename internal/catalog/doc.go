// Package catalog defines the control plane's catalog: the records it indexes (sites, vaults,
// resources, recovery points, jobs and the event outbox), the valid job state transitions,
// and the Store contract that storage adapters implement and the conformance suite in
// catalog/catalogtest checks. The vaults are the source of truth and a lost catalog is
// rebuilt from them; the catalog is what the API lists and what the scheduler and workers
// update. Package catalog holds no SQL and performs no I/O, and imports no internal package
// but errs.
package catalog
