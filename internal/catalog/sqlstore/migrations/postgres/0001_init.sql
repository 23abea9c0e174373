-- Times are timestamptz (microseconds). JSON values are json, which keeps the text as written.
-- IDs use the "C" collation so that they sort byte by byte whatever the database locale.
CREATE TABLE sites (
	name TEXT PRIMARY KEY
);

CREATE TABLE vaults (
	name   TEXT PRIMARY KEY,
	site   TEXT REFERENCES sites (name),
	url    TEXT NOT NULL,
	locked BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE resources (
	name       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	host       TEXT NOT NULL DEFAULT '',
	tags       JSON NOT NULL DEFAULT '{}',
	continuous BOOLEAN NOT NULL DEFAULT false
);

-- Points and jobs keep no foreign key to vaults or resources: they are history and outlive
-- a vault or resource removed from the configuration.
CREATE TABLE points (
	id          TEXT COLLATE "C" PRIMARY KEY,
	vault       TEXT NOT NULL,
	resource    TEXT NOT NULL,
	kind        TEXT NOT NULL,
	time        TIMESTAMPTZ NOT NULL,
	host        TEXT NOT NULL DEFAULT '',
	paths       JSON NOT NULL DEFAULT '[]',
	tags        JSON NOT NULL DEFAULT '{}',
	parent      TEXT NOT NULL DEFAULT '',
	size_bytes  BIGINT NOT NULL DEFAULT 0,
	range_from  TIMESTAMPTZ,
	range_to    TIMESTAMPTZ,
	copied_from TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	deleted_at  TIMESTAMPTZ
);
CREATE INDEX points_time ON points (time, id);
CREATE INDEX points_vault_time ON points (vault, time, id);
CREATE INDEX points_resource_time ON points (resource, time, id);

CREATE TABLE jobs (
	id               TEXT COLLATE "C" PRIMARY KEY,
	kind             TEXT NOT NULL,
	state            TEXT NOT NULL,
	resource         TEXT NOT NULL DEFAULT '',
	vault            TEXT NOT NULL DEFAULT '',
	target_vault     TEXT NOT NULL DEFAULT '',
	plan             TEXT NOT NULL DEFAULT '',
	rule             TEXT NOT NULL DEFAULT '',
	host             TEXT NOT NULL DEFAULT '',
	scheduled_for    TIMESTAMPTZ,
	start_by         TIMESTAMPTZ,
	complete_by      TIMESTAMPTZ,
	created_at       TIMESTAMPTZ NOT NULL,
	started_at       TIMESTAMPTZ,
	finished_at      TIMESTAMPTZ,
	attempt          BIGINT NOT NULL DEFAULT 0,
	bytes_done       BIGINT NOT NULL DEFAULT 0,
	bytes_total      BIGINT NOT NULL DEFAULT 0,
	files_done       BIGINT NOT NULL DEFAULT 0,
	point_id         TEXT NOT NULL DEFAULT '',
	created_resource TEXT NOT NULL DEFAULT '',
	error            TEXT NOT NULL DEFAULT '',
	params           JSON,
	dedup_key        TEXT UNIQUE -- NULL when unset; set keys are unique
);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_resource ON jobs (resource, id);
CREATE INDEX jobs_vault ON jobs (vault, id);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE events (
	id            TEXT COLLATE "C" PRIMARY KEY,
	version       TEXT NOT NULL,
	source        TEXT NOT NULL,
	detail_type   TEXT NOT NULL,
	time          TIMESTAMPTZ NOT NULL,
	site          TEXT NOT NULL DEFAULT '',
	resources     JSON NOT NULL DEFAULT '[]',
	detail        JSON NOT NULL,
	dispatched_at TIMESTAMPTZ
);
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;
CREATE INDEX events_time ON events (time);
