// Package intake turns events that arrive from outside Rewind into event envelopes: an
// Amazon EventBridge PutEvents request (or envelopes in Rewind's own shape), an
// Alertmanager webhook notification, or any JSON webhook body through a configured
// Mapping. It validates what it is given as strictly as the service it imitates (entry
// limits and sizes, the reserved rewind. source prefix, the Alertmanager payload version),
// reporting per-entry problems the way PutEvents does, and gives each event a new id.
// It must not match rules, deliver, authenticate callers or persist anything: the API
// handler that calls it does that.
package intake
