-- PostgreSQL twin of migrations/0001_tracking.sql (same version numbers, so a later
-- migration N exists in both folders). Tables are created in the shape the SQLite
-- migrations end with: here `tracked` is already keyed by (repository, deployment_id),
-- which SQLite reaches in 0004.
--
-- Deployments whose chat message deploybot keeps up to date. `data` is the JSON of
-- store::Tracked (text, kept byte for byte); `repository` is lowercased (GitHub's
-- names are case-insensitive); `request_id` is payload.deploybot.request_id; `settled`
-- (final state shown) is indexed so a restart finds the rest fast.
CREATE TABLE tracked (
    repository TEXT NOT NULL,
    deployment_id BIGINT NOT NULL,
    request_id TEXT,
    settled BOOLEAN NOT NULL DEFAULT FALSE,
    data TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repository, deployment_id)
);
CREATE INDEX tracked_unsettled ON tracked (settled) WHERE NOT settled;
CREATE INDEX tracked_request ON tracked (repository, request_id) WHERE request_id IS NOT NULL;

-- X-GitHub-Delivery ids already accepted, so a redelivery is not processed twice.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deliveries_age ON deliveries (received_at);
