// Package dispatch is Rewind's event router: after commit it reads the undispatched events
// of the catalog's outbox, matches them against the event rules (the configuration's and
// those stored in the catalog through the API, reloaded when their revision changes) and
// records one durable delivery per matched target in the same transaction that marks the
// events dispatched; it then works through due deliveries with retries (exponential
// backoff with jitter, bounded by each target's retry policy) until each is delivered or
// becomes a dead letter, opens incidents for incident targets, re-sends archived events on
// replay, prunes the archive, and turns alarm state changes of the server's monitors into
// outbox events, each stored with the alarm's new state so that a restart continues from
// it. It must not decide what matches (the rules package does) nor probe or evaluate
// anything itself (monitor and alarm do), and it reaches the catalog only through
// catalog.Store.
package dispatch
