// Package rules turns Rewind's event rules into deliveries: it compiles a rule (an event
// pattern, up to five targets, an optional input transformer and a retry policy) with every
// field validated, matches an event Envelope against a Set of compiled rules to produce one
// Delivery per matching target with its payload already transformed, and executes a
// Delivery against its target (a signed webhook, a notification URL, a local command, or
// the caller's runbook starter or incident sink), classifying failures as retryable or
// permanent. It also computes the backoff of the retry policy and verifies webhook
// signatures for receivers. It must not persist or queue anything: the durable queue,
// attempt counting, dead-letter records and the outbox belong to the dispatcher that calls
// it, and it imports no internal package other than errs and events/pattern.
package rules
