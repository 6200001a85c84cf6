-- PostgreSQL twin of migrations/0011_queue.sql.
--
-- A queue per app and environment: people waiting for an environment that is locked
-- by someone else, busy with an unfinished deployment, or reserved for the one whose
-- turn it is.
--
-- The order is the database's: `position` is taken as MAX + 1 in the insert itself and
-- is unique per (app, environment), so two racing joins get two positions, one after
-- the other (the loser of the unique index retries). One open entry per person and
-- queue, and at most one entry whose turn it is per queue: both partial unique
-- indexes. An entry is closed once, by a conditional UPDATE on `state`.
CREATE TABLE queue (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    position BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    command TEXT NOT NULL,
    conversation TEXT NOT NULL,
    joined_at TIMESTAMPTZ NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting',
    told_at TIMESTAMPTZ,
    reserved_until TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,
    PRIMARY KEY (app, environment, position)
);
CREATE UNIQUE INDEX queue_one_per_person ON queue (app, environment, user_id)
    WHERE state IN ('waiting', 'turn');
CREATE UNIQUE INDEX queue_one_turn ON queue (app, environment) WHERE state = 'turn';
CREATE INDEX queue_open ON queue (state, app, environment, position);

ALTER TABLE locks ADD COLUMN reminded_at TIMESTAMPTZ;
ALTER TABLE locks ADD COLUMN deployment TEXT;
