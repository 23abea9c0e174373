-- A job run by an agent on a data host: the last time the agent reported it alive.
ALTER TABLE jobs ADD COLUMN heartbeat_at TIMESTAMPTZ;
