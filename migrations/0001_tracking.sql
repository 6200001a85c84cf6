-- Deployments whose chat message deploybot keeps up to date. `data` is the JSON of
-- store::Tracked; `settled` (final state shown) is indexed so a restart finds the rest fast.
CREATE TABLE tracked (
    deployment_id INTEGER PRIMARY KEY,
    repository TEXT NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX tracked_unsettled ON tracked (settled) WHERE settled = 0;

-- X-GitHub-Delivery ids already accepted, so a redelivery is not processed twice.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
CREATE INDEX deliveries_age ON deliveries (received_at);
