-- PostgreSQL twin of migrations/0004_routing_key.sql (whose re-keying of `tracked` by
-- repository is already in 0001 here).
--
-- Settings the bot keeps for itself: `routing_key`, the key of the mac that proves a
-- deployment's payload.deploybot was written by deploybot (generated at first start;
-- instances sharing this database share it). Written once: INSERT … ON CONFLICT DO
-- NOTHING, then read back, so racing first starts agree on one key.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
