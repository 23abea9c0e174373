-- Times are TEXT in the fixed-width form 2006-01-02T15:04:05.000000Z (UTC), so that they
-- compare and sort as strings. JSON values are TEXT. Booleans are 0 or 1.
CREATE TABLE sites (
	name TEXT PRIMARY KEY
);

CREATE TABLE vaults (
	name   TEXT PRIMARY KEY,
	site   TEXT REFERENCES sites (name),
	url    TEXT NOT NULL,
	locked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE resources (
	name       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	host       TEXT NOT NULL DEFAULT '',
	tags       TEXT NOT NULL DEFAULT '{}',
	continuous INTEGER NOT NULL DEFAULT 0
);

-- Points and jobs keep no foreign key to vaults or resources: they are history and outlive
-- a vault or resource removed from the configuration.
CREATE TABLE points (
	id          TEXT PRIMARY KEY,
	vault       TEXT NOT NULL,
	resource    TEXT NOT NULL,
	kind        TEXT NOT NULL,
	time        TEXT NOT NULL,
	host        TEXT NOT NULL DEFAULT '',
	paths       TEXT NOT NULL DEFAULT '[]',
	tags        TEXT NOT NULL DEFAULT '{}',
	parent      TEXT NOT NULL DEFAULT '',
	size_bytes  INTEGER NOT NULL DEFAULT 0,
	range_from  TEXT,
	range_to    TEXT,
	copied_from TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	deleted_at  TEXT
);
CREATE INDEX points_time ON points (time, id);
CREATE INDEX points_vault_time ON points (vault, time, id);
CREATE INDEX points_resource_time ON points (resource, time, id);

CREATE TABLE jobs (
	id               TEXT PRIMARY KEY,
	kind             TEXT NOT NULL,
	state            TEXT NOT NULL,
	resource         TEXT NOT NULL DEFAULT '',
	vault            TEXT NOT NULL DEFAULT '',
	target_vault     TEXT NOT NULL DEFAULT '',
	plan             TEXT NOT NULL DEFAULT '',
	rule             TEXT NOT NULL DEFAULT '',
	host             TEXT NOT NULL DEFAULT '',
	scheduled_for    TEXT,
	start_by         TEXT,
	complete_by      TEXT,
	created_at       TEXT NOT NULL,
	started_at       TEXT,
	finished_at      TEXT,
	attempt          INTEGER NOT NULL DEFAULT 0,
	bytes_done       INTEGER NOT NULL DEFAULT 0,
	bytes_total      INTEGER NOT NULL DEFAULT 0,
	files_done       INTEGER NOT NULL DEFAULT 0,
	point_id         TEXT NOT NULL DEFAULT '',
	created_resource TEXT NOT NULL DEFAULT '',
	error            TEXT NOT NULL DEFAULT '',
	params           TEXT,
	dedup_key        TEXT UNIQUE -- NULL when unset; set keys are unique
);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_resource ON jobs (resource, id);
CREATE INDEX jobs_vault ON jobs (vault, id);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE events (
	id            TEXT PRIMARY KEY,
	version       TEXT NOT NULL,
	source        TEXT NOT NULL,
	detail_type   TEXT NOT NULL,
	time          TEXT NOT NULL,
	site          TEXT NOT NULL DEFAULT '',
	resources     TEXT NOT NULL DEFAULT '[]',
	detail        TEXT NOT NULL,
	dispatched_at TEXT
);
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;
CREATE INDEX events_time ON events (time);
