-- Deploys waiting for their ref's checks (`deploy … when green`). `data` is the JSON of
-- store::Wait (the command, who asked and where, app, environment, ref, the sha asked
-- for, the deadline). `pokes` counts the status / check_run / check_suite webhooks
-- seen for (repository, sha) while it is open: the leader re-reads the checks of a
-- wait whose count moved. At most one wait is open per (app, environment). A wait is open until `closed_at` is set, once, by a
-- conditional UPDATE: whoever closes it (as `green`) is the one that deploys.
-- (Version 0008 is PostgreSQL's leases; SQLite has no leases.)
CREATE TABLE waits (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    repository TEXT NOT NULL,
    sha TEXT NOT NULL,
    created_at TEXT NOT NULL,
    message_id TEXT,
    pokes INTEGER NOT NULL DEFAULT 0,
    closed_at TEXT,
    resolution TEXT
);
CREATE INDEX waits_open ON waits (repository, sha) WHERE closed_at IS NULL;
-- One open wait per environment of an app: two racing `when green`s cannot both wait.
CREATE UNIQUE INDEX waits_one_per_environment ON waits (app, environment) WHERE closed_at IS NULL;
