// Package runbook parses, validates and runs Rewind runbooks: state machines written in the
// Amazon States Language (JSONPath mode), in JSON or YAML. It implements every state type,
// input and output processing, intrinsic functions, Choice rules, Retry and Catch, task
// tokens and timeouts, and records every transition as a history Event so an execution can
// be resumed from its recorded history. Time is injected through a Clock. Package runbook
// must not know what a task does: task kinds (rewind:restore, rewind:exec, …) are a Registry
// filled by the caller, and it imports no other internal package except internal/errs.
package runbook
