-- Freezes made in chat (`freeze [ENV] [on APP] [for DURATION] -- REASON`). One per
-- scope: the primary key is the guarantee, so freezing what is frozen replaces it in
-- one statement, and `unfreeze` deletes exactly the row it names. An empty app or
-- environment means every one. `expires_at` NULL: until `unfreeze`.
CREATE TABLE freezes (
    app TEXT NOT NULL,
    environment TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    conversation TEXT NOT NULL,
    PRIMARY KEY (app, environment)
);
