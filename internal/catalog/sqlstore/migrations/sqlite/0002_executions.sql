-- Runbooks and their executions. Executions keep no foreign key to runbooks: an execution
-- holds a copy of its definition and outlives the runbook. History and task tokens belong
-- to their execution.
CREATE TABLE runbooks (
	name       TEXT PRIMARY KEY,
	definition TEXT NOT NULL,
	source     TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

CREATE TABLE executions (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	runbook     TEXT NOT NULL DEFAULT '',
	definition  TEXT NOT NULL,
	input       TEXT NOT NULL,
	status      TEXT NOT NULL,
	output      TEXT,
	error       TEXT NOT NULL DEFAULT '',
	cause       TEXT NOT NULL DEFAULT '',
	started_at  TEXT NOT NULL,
	stopped_at  TEXT,
	owner       TEXT NOT NULL DEFAULT '',
	lease_until TEXT
);
CREATE INDEX executions_status ON executions (status, id);
CREATE INDEX executions_runbook ON executions (runbook, id);

CREATE TABLE execution_history (
	execution TEXT NOT NULL REFERENCES executions (id),
	seq       INTEGER NOT NULL,
	type      TEXT NOT NULL,
	time      TEXT NOT NULL,
	event     TEXT NOT NULL,
	PRIMARY KEY (execution, seq)
);

CREATE TABLE task_tokens (
	token       TEXT PRIMARY KEY,
	execution   TEXT NOT NULL REFERENCES executions (id),
	state       TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	resolution  TEXT NOT NULL DEFAULT '',
	output      TEXT,
	error       TEXT NOT NULL DEFAULT '',
	cause       TEXT NOT NULL DEFAULT '',
	resolved_at TEXT
);
CREATE INDEX task_tokens_execution ON task_tokens (execution, created_at, token);
CREATE INDEX task_tokens_created ON task_tokens (created_at, token);
