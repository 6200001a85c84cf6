-- Settings the bot keeps for itself: `routing_key`, the key of the mac that proves a
-- deployment's payload.deploybot was written by deploybot (generated at first start;
-- instances sharing this database share it). Written once: INSERT … ON CONFLICT DO
-- NOTHING, then read back, so racing first starts agree on one key.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Tracked deployments are keyed by (repository, deployment id): a status event is
-- matched to a record only if both agree. `repository` is lowercased (GitHub's names
-- are case-insensitive). `request_id` (payload.deploybot.request_id) lets the tracker
-- tell a copied payload from the deployment it was made for.
CREATE TABLE tracked_by_repository (
    repository TEXT NOT NULL,
    deployment_id INTEGER NOT NULL,
    request_id TEXT,
    settled INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (repository, deployment_id)
);
INSERT INTO tracked_by_repository (repository, deployment_id, request_id, settled, data, updated_at)
    SELECT lower(repository), deployment_id, json_extract(data, '$.request_id'), settled, data, updated_at
    FROM tracked;
DROP TABLE tracked;
ALTER TABLE tracked_by_repository RENAME TO tracked;
CREATE INDEX tracked_unsettled ON tracked (settled) WHERE settled = 0;
CREATE INDEX tracked_request ON tracked (repository, request_id) WHERE request_id IS NOT NULL;
