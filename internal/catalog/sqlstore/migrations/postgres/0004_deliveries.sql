-- Deliveries: one per rule target matched by an event, the durable queue the dispatcher
-- works through (DEAD rows are the dead letters). No foreign key to events: the archive
-- is pruned while deliveries keep their copy of the event in spec.
CREATE TABLE deliveries (
	id               TEXT COLLATE "C" PRIMARY KEY,
	event_id         TEXT COLLATE "C" NOT NULL,
	rule             TEXT NOT NULL,
	target           INTEGER NOT NULL,
	kind             TEXT NOT NULL,
	replay           TEXT NOT NULL DEFAULT '',
	state            TEXT NOT NULL,
	spec             JSON NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	first_attempt_at TIMESTAMPTZ,
	next_at          TIMESTAMPTZ NOT NULL,
	last_error       TEXT NOT NULL DEFAULT '',
	owner            TEXT NOT NULL DEFAULT '',
	lease_until      TIMESTAMPTZ,
	created_at       TIMESTAMPTZ NOT NULL,
	finished_at      TIMESTAMPTZ
);
CREATE INDEX deliveries_due ON deliveries (next_at, id) WHERE state = 'PENDING';
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

-- Incidents opened by incident targets; the ID is the delivery's, so a delivery retried
-- after a crash opens its incident once.
CREATE TABLE incidents (
	id        TEXT COLLATE "C" PRIMARY KEY,
	title     TEXT NOT NULL,
	severity  TEXT NOT NULL,
	rule      TEXT NOT NULL,
	event_id  TEXT COLLATE "C" NOT NULL,
	event     JSON NOT NULL,
	status    TEXT NOT NULL,
	opened_at TIMESTAMPTZ NOT NULL,
	closed_at TIMESTAMPTZ
);
CREATE INDEX incidents_status ON incidents (status, id);
