// Package servertasks adds the runbook tasks that need a Rewind server: rewind:backup,
// rewind:restore, rewind:copy and rewind:check each submit a job through the control
// service, wait until the catalog shows it finished, and return the job as the task's
// output (or fail with Rewind.JobFailed, Rewind.JobAborted or Rewind.JobExpired). It
// runs no job itself and never writes the catalog.
package servertasks
