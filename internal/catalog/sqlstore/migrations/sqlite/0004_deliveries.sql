-- Deliveries: one per rule target matched by an event, the durable queue the dispatcher
-- works through (DEAD rows are the dead letters). No foreign key to events: the archive
-- is pruned while deliveries keep their copy of the event in spec.
CREATE TABLE deliveries (
	id               TEXT PRIMARY KEY,
	event_id         TEXT NOT NULL,
	rule             TEXT NOT NULL,
	target           INTEGER NOT NULL,
	kind             TEXT NOT NULL,
	replay           TEXT NOT NULL DEFAULT '',
	state            TEXT NOT NULL,
	spec             TEXT NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	first_attempt_at TEXT,
	next_at          TEXT NOT NULL,
	last_error       TEXT NOT NULL DEFAULT '',
	owner            TEXT NOT NULL DEFAULT '',
	lease_until      TEXT,
	created_at       TEXT NOT NULL,
	finished_at      TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_at, id) WHERE state = 'PENDING';
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

-- Incidents opened by incident targets; the ID is the delivery's, so a delivery retried
-- after a crash opens its incident once.
CREATE TABLE incidents (
	id        TEXT PRIMARY KEY,
	title     TEXT NOT NULL,
	severity  TEXT NOT NULL,
	rule      TEXT NOT NULL,
	event_id  TEXT NOT NULL,
	event     TEXT NOT NULL,
	status    TEXT NOT NULL,
	opened_at TEXT NOT NULL,
	closed_at TEXT
);
CREATE INDEX incidents_status ON incidents (status, id);
