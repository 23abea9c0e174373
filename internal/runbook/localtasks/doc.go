// Package localtasks implements the task resources a runbook can use without a Rewind
// server: rewind:exec runs a command, rewind:http makes an HTTP request and rewind:event
// writes an event as one JSON line. Registry returns them ready for runbook.NewEngine, so the
// command line and the server share one implementation. It must not hold state between
// invocations or know about backups; vault-aware tasks (rewind:restore, …) live elsewhere.
package localtasks
