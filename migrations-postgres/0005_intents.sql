-- PostgreSQL twin of migrations/0005_intents.sql.
--
-- Deployments deploybot is about to create, written before `POST /deployments`: if the
-- bot dies (or GitHub never answers) between the POST and its answer, a restart or a
-- background check looks the deployment up by `request_id` (it is in the payload)
-- instead of forgetting it. `data` is the JSON of store::Intent. An intent is open
-- until `resolved_at` is set, once, by a conditional UPDATE: `created` (now a tracked
-- deployment), `refused`, `failed`, `not_created` or `abandoned`.
CREATE TABLE intents (
    request_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolution TEXT,
    deployment_id BIGINT
);
CREATE INDEX intents_open ON intents (created_at) WHERE resolved_at IS NULL;
