-- Runbooks and their executions. Executions keep no foreign key to runbooks: an execution
-- holds a copy of its definition and outlives the runbook. History and task tokens belong
-- to their execution.
CREATE TABLE runbooks (
	name       TEXT PRIMARY KEY,
	definition JSON NOT NULL,
	source     TEXT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE executions (
	id          TEXT COLLATE "C" PRIMARY KEY,
	name        TEXT NOT NULL,
	runbook     TEXT NOT NULL DEFAULT '',
	definition  JSON NOT NULL,
	input       JSON NOT NULL,
	status      TEXT NOT NULL,
	output      JSON,
	error       TEXT NOT NULL DEFAULT '',
	cause       TEXT NOT NULL DEFAULT '',
	started_at  TIMESTAMPTZ NOT NULL,
	stopped_at  TIMESTAMPTZ,
	owner       TEXT NOT NULL DEFAULT '',
	lease_until TIMESTAMPTZ
);
CREATE INDEX executions_status ON executions (status, id);
CREATE INDEX executions_runbook ON executions (runbook, id);

CREATE TABLE execution_history (
	execution TEXT COLLATE "C" NOT NULL REFERENCES executions (id),
	seq       BIGINT NOT NULL,
	type      TEXT NOT NULL,
	time      TIMESTAMPTZ NOT NULL,
	event     JSON NOT NULL,
	PRIMARY KEY (execution, seq)
);

CREATE TABLE task_tokens (
	token       TEXT COLLATE "C" PRIMARY KEY,
	execution   TEXT COLLATE "C" NOT NULL REFERENCES executions (id),
	state       TEXT NOT NULL DEFAULT '',
	created_at  TIMESTAMPTZ NOT NULL,
	resolution  TEXT NOT NULL DEFAULT '',
	output      JSON,
	error       TEXT NOT NULL DEFAULT '',
	cause       TEXT NOT NULL DEFAULT '',
	resolved_at TIMESTAMPTZ
);
CREATE INDEX task_tokens_execution ON task_tokens (execution, created_at, token);
CREATE INDEX task_tokens_created ON task_tokens (created_at, token);
