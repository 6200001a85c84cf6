-- PostgreSQL twin of migrations/0006_inbox.sql.
--
-- The durable inbox: webhook events answered 2xx and not yet applied by the tracker.
-- A delivery is answered only once its row (and its id in `deliveries`) is committed;
-- the tracker deletes the row once the event is applied; a restart applies what is
-- left, in arrival order (`seq`, what SQLite's rowid is there). `key` is the
-- X-GitHub-Delivery id, or a generated one for a delivery without it. `event` is the
-- JSON of the parsed fields the tracker needs (inbox::Work), not the raw body.
CREATE TABLE inbox (
    key TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    event TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inbox_order ON inbox (seq);
