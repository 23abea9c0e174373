// Package orchestrate runs runbook executions on a Rewind server, durably: every event the
// runbook engine records is written to the catalog's execution history as it happens, a
// server that starts (or notices another server's lease expired) claims RUNNING executions
// and resumes them from their history, and the decisions on .waitForTaskToken tasks
// (approve, deny) are stored in the catalog so they reach the execution wherever and
// whenever it runs. Its servertasks subpackage adds the rewind:backup, rewind:restore,
// rewind:copy and rewind:check tasks. Package orchestrate must not interpret state
// machines (package runbook does), run jobs (package jobs does) or serve HTTP (package api
// does).
package orchestrate
