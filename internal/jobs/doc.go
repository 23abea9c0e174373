// Package jobs runs the control plane's catalog jobs (backup, copy, restore, verify and
// prune) durably. A Runner executes one catalog job: it claims it (PENDING to RUNNING, so two
// workers never both run it), runs it against the configured vaults, records its progress,
// and ends it in a terminal state, writing every job and recovery point state change with its
// event in one catalog transaction. A Queue feeds the Runner from River, a job queue stored
// in the catalog's own SQLite or PostgreSQL database: enqueuing is idempotent, retryable
// failures come back with backoff until the job's completion window closes, concurrency is
// limited per vault and per host, and a server killed mid-job leaves the job re-queued or
// FAILED on restart, never lost and never run twice at once. Package jobs decides neither
// when jobs are due (the scheduler creates them) nor how resources are protected (the
// protection plugins do); it never reads the configuration file itself.
package jobs
