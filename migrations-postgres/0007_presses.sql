-- PostgreSQL twin of migrations/0007_presses.sql.
--
-- Buttons that were used: one row per chat message whose next-step buttons (Force,
-- Roll back, Retry, Unlock, Confirm/Cancel) someone pressed and which then did
-- something. The primary key makes the first press win, whatever the concurrency (or
-- the number of instances); a press that changed nothing is deleted again, so the
-- button stays usable for someone who may.
CREATE TABLE presses (
    message TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    command TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX presses_at ON presses (at);
