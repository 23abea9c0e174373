// Package events is the home of Rewind's event routing: the event envelope
// ({version, id, source, detail-type, time, site, resources, detail}) that every
// subsystem emits after committing a state change, and the rules that route those
// events to targets. Subpackages hold the pieces: pattern compiles and evaluates
// Amazon EventBridge-compatible event patterns; rules compiles rules (pattern, targets,
// input transformer, retry policy) and delivers one matched target once (a webhook, a
// notification, a command, or the caller's runbook and incident hooks); intake turns
// outside requests (PutEvents, Alertmanager, generic webhooks) into envelopes. None of
// them persists anything: the outbox, the durable delivery queue with its retries and
// dead letters, and the archive belong to the server that uses them.
package events
