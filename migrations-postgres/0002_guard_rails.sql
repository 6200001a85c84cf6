-- PostgreSQL twin of migrations/0002_guard_rails.sql.
--
-- At most one lock per app and environment: the primary key is the guarantee, so two
-- racing `lock` commands cannot both win. Expired rows are deleted before a new lock
-- is inserted, in the same transaction.
CREATE TABLE locks (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    warned BOOLEAN NOT NULL DEFAULT FALSE,
    conversation TEXT NOT NULL,
    PRIMARY KEY (app, environment)
);

-- Deploys waiting for their requester's "yes". A confirmation is used at most once:
-- the UPDATE that consumes it requires state = 'pending'.
CREATE TABLE confirmations (
    id TEXT PRIMARY KEY,
    requester_id TEXT NOT NULL,
    requester_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    conversation TEXT NOT NULL,
    command TEXT NOT NULL,
    summary TEXT NOT NULL,
    message_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX confirmations_pending ON confirmations (state, expires_at);

-- Every command attempt. Only inserted and pruned by age; no command can edit it.
-- `id` grows with each insert: newest first is `ORDER BY id DESC`.
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    adapter TEXT NOT NULL,
    channel TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    text TEXT NOT NULL,
    command TEXT NOT NULL,
    app TEXT,
    environment TEXT,
    decision TEXT NOT NULL,
    rule TEXT,
    deployment_id BIGINT,
    detail TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_app_env ON audit (app, environment, at);
