// Package events is the home of Rewind's event routing: the event envelope
// ({version, id, source, detail-type, time, site, resources, detail}) that every
// subsystem emits after committing a state change, and the rules that route those
// events to targets. Subpackages hold the pieces: pattern compiles and evaluates
// Amazon EventBridge-compatible event patterns. This package and its subpackages
// never deliver events, open connections or persist anything; delivery, retries and
// the outbox belong to the dispatcher that uses them.
package events
