-- A queue per app and environment: people waiting for an environment that is locked
-- by someone else, busy with an unfinished deployment, or reserved for the one whose
-- turn it is.
--
-- The order is the database's: `position` is taken as MAX + 1 in the insert itself and
-- is unique per (app, environment), so two racing joins get two positions, one after
-- the other (SQLite's single writer serialises them; PostgreSQL's unique index makes
-- the loser retry). One open entry per person and queue, and at most one entry whose
-- turn it is per queue: both partial unique indexes. An entry is closed once, by a
-- conditional UPDATE on `state`.
CREATE TABLE queue (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    position INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    -- The roles seen when they joined (JSON): an automatic deploy at hand-over is
    -- checked against them, as the chat adapter is not at hand then.
    roles TEXT NOT NULL,
    command TEXT NOT NULL,
    conversation TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    -- waiting → turn → deployed | lost | refused; waiting | turn → left.
    state TEXT NOT NULL DEFAULT 'waiting',
    told_at TEXT,
    reserved_until TEXT,
    closed_at TEXT,
    PRIMARY KEY (app, environment, position)
);
CREATE UNIQUE INDEX queue_one_per_person ON queue (app, environment, user_id)
    WHERE state IN ('waiting', 'turn');
CREATE UNIQUE INDEX queue_one_turn ON queue (app, environment) WHERE state = 'turn';
CREATE INDEX queue_open ON queue (state, app, environment, position);

-- Lock reminders: when the holder was last reminded (NULL: never), so that restarts
-- and other instances do not remind twice within an interval.
ALTER TABLE locks ADD COLUMN reminded_at TEXT;
-- An automatic lock's deployment (`owner/name#id`): released at its final state plus
-- the environment's auto_lock_grace. NULL for locks people took.
ALTER TABLE locks ADD COLUMN deployment TEXT;
