-- Event rules put through the API (the configuration's rules stay in the file). The
-- revision row grows with every put and delete, so that every server sharing the
-- catalog notices a change with one read.
CREATE TABLE event_rules (
	name       TEXT COLLATE "C" PRIMARY KEY,
	spec       JSON NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE event_rules_revision (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision BIGINT NOT NULL
);
INSERT INTO event_rules_revision (id, revision) VALUES (1, 0);

-- The last state each alarm announced, so that a restarted server continues from it
-- instead of announcing every alarm again.
CREATE TABLE alarm_states (
	name       TEXT COLLATE "C" PRIMARY KEY,
	state      TEXT NOT NULL,
	reason     TEXT NOT NULL,
	since      TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
