-- PostgreSQL only (SQLite has one instance, always the leader: no twin).
--
-- Leader leases: one row per lease name ("gateway": who holds the Discord gateway and
-- runs housekeeping). Taken and renewed by one atomic INSERT … ON CONFLICT DO UPDATE …
-- WHERE the lease expired or is already ours, against the database's clock (now());
-- `token` (the fencing token) increases on every change of holder.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
