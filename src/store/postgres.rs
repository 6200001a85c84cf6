//! [`Store`] on PostgreSQL (sqlx), with its own migrations (`migrations-postgres/`)
//! embedded in the binary.
//!
//! The semantics are the SQLite store's, method for method (`tests/store_contract.rs`
//! holds both to them), and every rule that must hold under concurrency is a rule of
//! the database here too: primary keys and `ON CONFLICT` for locks, deliveries,
//! presses and settings; one conditional `UPDATE … RETURNING` for confirmations and
//! intents. Statements run in PostgreSQL's default READ COMMITTED isolation: each
//! statement sees what was committed before it began, which is what the two-statement
//! "insert unless present, then read" methods rely on.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use super::{
    Arrival, AuditEntry, Confirmation, ConfirmationState, Freeze, Gauges, Intent, IntentResolution,
    Lock, LockTaken, Press, Store, StoreError, Tracked, Unconfirmable, Write, Written,
    GENERATED_KEY,
};
use super::{Wait, WaitResolution};
use crate::model::{DeploymentId, RepoName};

/// How long a caller waits for a pooled connection (or for a new one to be made)
/// before the store answers with an error instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening waits for the server's first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `ping`'s bound on its statement, so `/readyz` reports a stuck server quickly.
const PING_TIMEOUT: &str = "SET LOCAL statement_timeout = 2000";
/// Attempts of a transaction that lost a race it can win by starting again.
const RETRIES: usize = 16;

/// PostgreSQL's "unique_violation".
const UNIQUE_VIOLATION: &str = "23505";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to and migrates the database at `url` (`postgres://user:pass@host/db`,
    /// `?sslmode=require` for TLS), with at most `pool_size` connections.
    ///
    /// Two processes starting at once are safe: sqlx's migrator holds a PostgreSQL
    /// advisory lock (`pg_advisory_lock`, keyed by the database name) from before it
    /// creates `_sqlx_migrations` until every migration ran.
    pub async fn open(url: &str, pool_size: u32) -> Result<PostgresStore, StoreError> {
        let shown = redacted(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError(format!("storage.url `{shown}`: {e}")))?;
        // One connection first, on its own: the pool retries a refused connection
        // until its timeout and then reports only that it timed out, while this says
        // what went wrong (refused, credentials, no such database, TLS).
        let probe = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(probe)) => probe,
            Ok(Err(e)) => return Err(StoreError(cannot_connect(&shown, &e))),
            Err(_) => {
                return Err(StoreError(cannot_connect(
                    &shown,
                    &sqlx::Error::PoolTimedOut,
                )))
            }
        };
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError(cannot_connect(&shown, &e)))?;
        sqlx::migrate!("./migrations-postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError(format!("cannot migrate {shown}: {e}")))?;
        Ok(PostgresStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `url` with its password (if any) replaced by `***`: what messages and logs show.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

/// Why the first connection failed, and what to check: for people.
fn cannot_connect(shown: &str, e: &sqlx::Error) -> String {
    let advice = match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") | Some("28000") => {
                "the server refused the credentials: check the user and password in storage.url (and the server's pg_hba.conf for this host and user)"
            }
            Some("3D000") => {
                "the database does not exist: create it (`createdb -h HOST -U USER NAME`, or CREATE DATABASE) or fix its name in storage.url"
            }
            _ => "check host, port, user, password and that the database exists",
        },
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
            "cannot reach the server: check the host and port in storage.url, that PostgreSQL is running there and accepts TCP connections from this machine (listen_addresses, pg_hba.conf, firewalls)"
        }
        sqlx::Error::Tls(_) => {
            "the TLS handshake failed: check sslmode in storage.url (`sslmode=require` needs a server with TLS enabled; `verify-full` a certificate valid for the host)"
        }
        _ => "check host, port, user, password and that the database exists",
    };
    format!("cannot connect to {shown}: {e}; {advice}")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION))
}

use super::repo_key;

#[async_trait]
impl Store for PostgresStore {
    async fn insert_tracked(&self, t: &Tracked) -> Result<bool, StoreError> {
        let done = tracked_query(INSERT_TRACKED, t, Utc::now())?
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_tracked(&self, t: &Tracked) -> Result<(), StoreError> {
        tracked_query(PUT_TRACKED, t, Utc::now())?
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn tracked(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> Result<Option<Tracked>, StoreError> {
        let row =
            sqlx::query("SELECT data FROM tracked WHERE repository = $1 AND deployment_id = $2")
                .bind(repo_key(repo))
                .bind(id.0 as i64)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(Some(serde_json::from_str(row.get::<&str, _>("data"))?)),
            None => Ok(None),
        }
    }

    async fn tracked_by_request(
        &self,
        repo: &RepoName,
        request_id: &str,
    ) -> Result<Option<Tracked>, StoreError> {
        let row = sqlx::query(
            "SELECT data FROM tracked WHERE repository = $1 AND request_id = $2
             ORDER BY deployment_id LIMIT 1",
        )
        .bind(repo_key(repo))
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(serde_json::from_str(row.get::<&str, _>("data"))?)),
            None => Ok(None),
        }
    }

    async fn unfinished(&self) -> Result<Vec<Tracked>, StoreError> {
        let rows = sqlx::query("SELECT data FROM tracked WHERE NOT settled ORDER BY deployment_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(r.get::<&str, _>("data"))?))
            .collect()
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Vec<Written>, StoreError> {
        let mut answers = vec![Written::Done; batch.len()];
        let mut tx = self.pool.begin().await?;
        // Deliveries: ids first (the unique key de-duplicates, also within the batch),
        // then the events of those that are new, each in one multi-row statement
        // (arrays, unnested: one statement whatever the batch's size).
        // With `AdmitApplied`, the event is already applied: no inbox row (`None`).
        let arrivals: Vec<(usize, Option<&str>, DateTime<Utc>, Option<&Arrival>)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, w)| match w {
                Write::Admit(a) => Some((i, a.delivery.as_deref(), a.at, Some(a))),
                Write::AdmitApplied { delivery, at, .. } => {
                    Some((i, delivery.as_deref(), *at, None))
                }
                _ => None,
            })
            .collect();
        let mut fresh = std::collections::HashSet::new();
        let (ids, at): (Vec<&str>, Vec<DateTime<Utc>>) = arrivals
            .iter()
            .filter_map(|(_, id, at, _)| id.map(|id| (id, *at)))
            .unzip();
        if !ids.is_empty() {
            let rows = sqlx::query(
                "INSERT INTO deliveries (id, received_at)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[])
                 ON CONFLICT (id) DO NOTHING RETURNING id",
            )
            .bind(&ids)
            .bind(&at)
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                fresh.insert(row.get::<String, _>("id"));
            }
        }
        let mut admitted = Vec::new();
        for (i, id, _, event) in &arrivals {
            // The first of the batch with a fresh id takes it; later ones are repeats.
            let new = match id {
                Some(id) => fresh.remove(*id),
                None => true,
            };
            answers[*i] = if new {
                admitted.extend(*event);
                Written::Admitted
            } else {
                Written::Duplicate
            };
        }
        if !admitted.is_empty() {
            let keys: Vec<&str> = admitted.iter().map(|a| a.key.as_str()).collect();
            let events: Vec<&str> = admitted.iter().map(|a| a.event.as_str()).collect();
            let at: Vec<DateTime<Utc>> = admitted.iter().map(|a| a.at).collect();
            // In the batch's order: `seq` is the order a restart applies them in.
            sqlx::query(
                "INSERT INTO inbox (key, event, received_at)
                 SELECT k, e, r FROM UNNEST($1::text[], $2::text[], $3::timestamptz[])
                     WITH ORDINALITY AS u (k, e, r, n)
                 ORDER BY n
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&keys)
            .bind(&events)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        let now = Utc::now();
        let superseded = Write::superseded(&batch);
        for (i, w) in batch.iter().enumerate() {
            match w {
                Write::Put(_) if superseded[i] => {}
                // In the batch's order, as a `Put` (its answer is set above).
                Write::Put(t) | Write::AdmitApplied { record: t, .. } => {
                    tracked_query(PUT_TRACKED, t, now)?
                        .execute(&mut *tx)
                        .await?;
                }
                Write::Insert(t) => {
                    let done = tracked_query(INSERT_TRACKED, t, now)?
                        .execute(&mut *tx)
                        .await?;
                    answers[i] = Written::Inserted(done.rows_affected() == 1);
                }
                Write::Admit(_) | Write::Applied(_) => {}
            }
        }
        let applied: Vec<&str> = batch
            .iter()
            .filter_map(|w| match w {
                Write::Applied(key) => Some(key.as_str()),
                _ => None,
            })
            .collect();
        if !applied.is_empty() {
            sqlx::query("DELETE FROM inbox WHERE key = ANY($1)")
                .bind(&applied)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(answers)
    }

    async fn inbox(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Arrival>, StoreError> {
        // A plain read, as on SQLite: the caller keeps what it hands to workers in
        // memory (one instance). A claim across instances needs a lease column and a
        // caller that renews it (see ARCHITECTURE.md, src/store/).
        let rows = sqlx::query(
            "SELECT key, event, received_at FROM inbox WHERE received_at < $1 ORDER BY seq LIMIT $2",
        )
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.get("key");
                Ok(Arrival {
                    delivery: Some(key.clone()).filter(|k| !k.starts_with(GENERATED_KEY)),
                    key,
                    event: r.get("event"),
                    at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM deliveries WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn take_lock(&self, lock: &Lock, now: DateTime<Utc>) -> Result<LockTaken, StoreError> {
        for _ in 0..RETRIES {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "DELETE FROM locks WHERE app = $1 AND environment = $2 AND expires_at <= $3",
            )
            .bind(&lock.app)
            .bind(&lock.environment)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // A conflict waits for the other taker's transaction, then updates (its
            // holder renewing) or leaves the row as it is, locked until we commit.
            let inserted = insert_lock(TAKE_LOCK, lock)?
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let result = if inserted == 1 {
                LockTaken::Taken
            } else {
                let row = sqlx::query("SELECT * FROM locks WHERE app = $1 AND environment = $2")
                    .bind(&lock.app)
                    .bind(&lock.environment)
                    .fetch_optional(&mut *tx)
                    .await?;
                match row {
                    Some(row) => LockTaken::HeldBy(Box::new(lock_from(&row)?)),
                    // Removed between the two statements: try again.
                    None => continue,
                }
            };
            tx.commit().await?;
            return Ok(result);
        }
        Err(StoreError(format!(
            "lock {}/{}: still contended after {RETRIES} attempts",
            lock.app, lock.environment
        )))
    }

    async fn replace_lock(
        &self,
        lock: &Lock,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError> {
        for _ in 0..RETRIES {
            let mut tx = self.pool.begin().await?;
            let previous =
                sqlx::query("DELETE FROM locks WHERE app = $1 AND environment = $2 RETURNING *")
                    .bind(&lock.app)
                    .bind(&lock.environment)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| lock_from(&row))
                    .transpose()?
                    .filter(|l| l.expires_at > now);
            match insert_lock(INSERT_LOCK, lock)?.execute(&mut *tx).await {
                Ok(_) => {}
                // Another replacer inserted after our DELETE's snapshot: start again,
                // and replace theirs (SQLite serialises the two the same way).
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            return Ok(previous);
        }
        Err(StoreError(format!(
            "lock {}/{}: still contended after {RETRIES} attempts",
            lock.app, lock.environment
        )))
    }

    async fn remove_lock(
        &self,
        app: &str,
        environment: &str,
        holder_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError> {
        let removed = sqlx::query(
            "DELETE FROM locks WHERE app = $1 AND environment = $2 AND holder_id = $3 RETURNING *",
        )
        .bind(app)
        .bind(environment)
        .bind(holder_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| lock_from(&row))
        .transpose()?;
        Ok(removed.filter(|l| l.expires_at > now))
    }

    async fn lock(
        &self,
        app: &str,
        environment: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError> {
        sqlx::query("SELECT * FROM locks WHERE app = $1 AND environment = $2 AND expires_at > $3")
            .bind(app)
            .bind(environment)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| lock_from(&row))
            .transpose()
    }

    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<Lock>, StoreError> {
        sqlx::query("SELECT * FROM locks WHERE expires_at > $1 ORDER BY created_at")
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(lock_from)
            .collect()
    }

    async fn locks_to_warn(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<Lock>, StoreError> {
        sqlx::query(
            "UPDATE locks SET warned = TRUE
             WHERE NOT warned AND expires_at > $1 AND expires_at <= $2 RETURNING *",
        )
        .bind(now)
        .bind(before)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(lock_from)
        .collect()
    }

    async fn expire_locks(&self, now: DateTime<Utc>) -> Result<Vec<Lock>, StoreError> {
        sqlx::query("DELETE FROM locks WHERE expires_at <= $1 RETURNING *")
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(lock_from)
            .collect()
    }

    async fn freeze(
        &self,
        freeze: &Freeze,
        now: DateTime<Utc>,
    ) -> Result<Option<Freeze>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let previous =
            sqlx::query("DELETE FROM freezes WHERE app = $1 AND environment = $2 RETURNING *")
                .bind(scope(&freeze.app))
                .bind(scope(&freeze.environment))
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| freeze_from(&row))
                .transpose()?
                .filter(|f| f.active(now));
        // A freezer racing this one inserts its row after our delete: the conflict
        // makes the later statement replace it, never fail.
        sqlx::query(INSERT_FREEZE)
            .bind(scope(&freeze.app))
            .bind(scope(&freeze.environment))
            .bind(&freeze.holder_id)
            .bind(&freeze.holder_name)
            .bind(&freeze.reason)
            .bind(freeze.created_at)
            .bind(freeze.expires_at)
            .bind(serde_json::to_string(&freeze.conversation)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(previous)
    }

    async fn unfreeze(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Freeze>, StoreError> {
        let removed =
            sqlx::query("DELETE FROM freezes WHERE app = $1 AND environment = $2 RETURNING *")
                .bind(app.unwrap_or(""))
                .bind(environment.unwrap_or(""))
                .fetch_optional(&self.pool)
                .await?
                .map(|row| freeze_from(&row))
                .transpose()?;
        Ok(removed.filter(|f| f.active(now)))
    }

    async fn freezes(&self, now: DateTime<Utc>) -> Result<Vec<Freeze>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM freezes WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(freeze_from).collect()
    }

    async fn add_confirmation(&self, c: &Confirmation) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO confirmations (id, requester_id, requester_name, channel, conversation, command, summary, message_id, created_at, expires_at, state, expected_live, expected_target)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&c.id)
        .bind(&c.requester_id)
        .bind(&c.requester_name)
        .bind(&c.conversation.channel)
        .bind(serde_json::to_string(&c.conversation)?)
        .bind(&c.command)
        .bind(&c.summary)
        .bind(&c.message_id)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.state.as_str())
        .bind(c.expected_live.map(|id| id as i64))
        .bind(&c.expected_target)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_confirmation_message(&self, id: &str, message_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE confirmations SET message_id = $1 WHERE id = $2")
            .bind(message_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn close_confirmation(
        &self,
        id: &str,
        user_id: &str,
        to: ConfirmationState,
        now: DateTime<Utc>,
    ) -> Result<Result<Confirmation, Unconfirmable>, StoreError> {
        // The state check in the WHERE clause is what makes a confirmation single-use:
        // a second UPDATE waits for the first, then re-checks the row and finds it
        // closed.
        let closed = sqlx::query(
            "UPDATE confirmations SET state = $1
             WHERE id = $2 AND requester_id = $3 AND state = 'pending' AND expires_at > $4
             RETURNING *",
        )
        .bind(to.as_str())
        .bind(id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = closed {
            return Ok(Ok(confirmation_from(&row)?));
        }
        let row = sqlx::query("SELECT * FROM confirmations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(Err(match row {
            None => Unconfirmable::NotFound,
            Some(row) => {
                let mut c = confirmation_from(&row)?;
                if c.state == ConfirmationState::Pending && c.expires_at <= now {
                    c.state = ConfirmationState::Expired;
                }
                if c.state == ConfirmationState::Pending && c.requester_id != user_id {
                    Unconfirmable::NotYours(c)
                } else {
                    Unconfirmable::Closed(c)
                }
            }
        }))
    }

    async fn pending_confirmations(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Confirmation>, StoreError> {
        sqlx::query(
            "SELECT * FROM confirmations WHERE channel = $1 AND state = 'pending' AND expires_at > $2
             ORDER BY created_at DESC",
        )
        .bind(channel)
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(confirmation_from)
        .collect()
    }

    async fn latest_confirmation(
        &self,
        channel: &str,
        requester_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Confirmation>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM confirmations WHERE channel = $1 AND requester_id = $2
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(channel)
        .bind(requester_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut c = confirmation_from(&row)?;
        if c.state == ConfirmationState::Pending && c.expires_at <= now {
            c.state = ConfirmationState::Expired;
        }
        Ok(Some(c))
    }

    async fn expire_confirmations(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Confirmation>, StoreError> {
        sqlx::query(
            "UPDATE confirmations SET state = 'expired'
             WHERE state = 'pending' AND expires_at <= $1 RETURNING *",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(confirmation_from)
        .collect()
    }

    async fn add_intent(&self, intent: &Intent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO intents (request_id, data, created_at) VALUES ($1, $2, $3)")
            .bind(&intent.request_id)
            .bind(serde_json::to_string(intent)?)
            .bind(intent.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn close_intent(
        &self,
        request_id: &str,
        resolution: IntentResolution,
        deployment: Option<DeploymentId>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // `resolved_at IS NULL` in the WHERE clause: of two closers, one wins (the
        // second waits for the first's row lock, then re-checks and matches nothing).
        let done = sqlx::query(
            "UPDATE intents SET resolved_at = $1, resolution = $2, deployment_id = $3
             WHERE request_id = $4 AND resolved_at IS NULL",
        )
        .bind(at)
        .bind(resolution.as_str())
        .bind(deployment.map(|d| d.0 as i64))
        .bind(request_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn open_intents(&self) -> Result<Vec<Intent>, StoreError> {
        sqlx::query("SELECT data FROM intents WHERE resolved_at IS NULL ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(serde_json::from_str(r.get::<&str, _>("data"))?))
            .collect()
    }

    // ----- waits -----

    async fn add_wait(&self, w: &Wait) -> Result<Option<Wait>, StoreError> {
        // Nothing inserted: the one open wait of (app, environment) is there, or the id
        // is taken.
        let inserted = sqlx::query(
            "INSERT INTO waits (id, data, app, environment, repository, sha, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT DO NOTHING",
        )
        .bind(&w.id)
        .bind(serde_json::to_string(w)?)
        .bind(&w.app)
        .bind(&w.environment)
        .bind(w.repository.lowercase())
        .bind(&w.sha)
        .bind(w.created_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let other = sqlx::query("SELECT data, message_id, pokes FROM waits WHERE app = $1 AND environment = $2 AND closed_at IS NULL")
            .bind(&w.app)
            .bind(&w.environment)
            .fetch_optional(&self.pool)
            .await?;
        match other {
            Some(r) => Ok(Some(wait_from(&r)?)),
            None => Err(StoreError(format!(
                "a wait with id {} exists already",
                w.id
            ))),
        }
    }

    async fn set_wait_message(&self, id: &str, message_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE waits SET message_id = $1 WHERE id = $2")
            .bind(message_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn open_waits(&self) -> Result<Vec<Wait>, StoreError> {
        sqlx::query(
            "SELECT data, message_id, pokes FROM waits WHERE closed_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(wait_from)
        .collect()
    }

    async fn poke_waits(&self, repository: &RepoName, sha: &str) -> Result<u64, StoreError> {
        // Nearly every check event (one per CI status of every repository) is for a
        // commit nobody waits for: a read answers those without the write lock.
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM waits WHERE repository = $1 AND sha = $2 AND closed_at IS NULL",
        )
        .bind(repository.lowercase())
        .bind(sha)
        .fetch_one(&self.pool)
        .await?;
        if open == 0 {
            return Ok(0);
        }
        let done = sqlx::query(
            "UPDATE waits SET pokes = pokes + 1
             WHERE repository = $1 AND sha = $2 AND closed_at IS NULL",
        )
        .bind(repository.lowercase())
        .bind(sha)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn close_wait(
        &self,
        id: &str,
        resolution: WaitResolution,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // `closed_at IS NULL` in the WHERE clause: of two closers, one wins (the second
        // waits for the first's row lock, then re-checks and matches nothing).
        let done = sqlx::query(
            "UPDATE waits SET closed_at = $1, resolution = $2 WHERE id = $3 AND closed_at IS NULL",
        )
        .bind(at)
        .bind(resolution.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, adapter, channel, user_id, user_name, text, command, app, environment, decision, rule, deployment_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(e.at)
        .bind(&e.adapter)
        .bind(&e.channel)
        .bind(&e.user_id)
        .bind(&e.user_name)
        .bind(&e.text)
        .bind(&e.command)
        .bind(&e.app)
        .bind(&e.environment)
        .bind(&e.decision)
        .bind(&e.rule)
        .bind(e.deployment_id.map(|id| id as i64))
        .bind(&e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit
             WHERE ($1::text IS NULL OR app = $1) AND ($2::text IS NULL OR environment = $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(app)
        .bind(environment)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    adapter: r.get("adapter"),
                    channel: r.get("channel"),
                    user_id: r.get("user_id"),
                    user_name: r.get("user_name"),
                    text: r.get("text"),
                    command: r.get("command"),
                    app: r.get("app"),
                    environment: r.get("environment"),
                    decision: r.get("decision"),
                    rule: r.get("rule"),
                    deployment_id: r.get::<Option<i64>, _>("deployment_id").map(|i| i as u64),
                    detail: r.get("detail"),
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A write, rolled back: proves the server is reachable and takes writes here
        // (not a read-only standby, not `default_transaction_read_only`), without
        // changing anything. `WHERE FALSE` updates no row, but PostgreSQL refuses the
        // statement itself in a read-only transaction. Bounded, so a stuck server is
        // reported instead of waited out.
        let mut tx = self.pool.begin().await?;
        sqlx::query(PING_TIMEOUT).execute(&mut *tx).await?;
        sqlx::query("UPDATE settings SET value = value WHERE FALSE")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    async fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM locks WHERE expires_at > $1),
                    (SELECT COUNT(*) FROM confirmations WHERE state = 'pending' AND expires_at > $1),
                    (SELECT COUNT(*) FROM tracked WHERE NOT settled)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let count = |i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
        };
        Ok(Gauges {
            locks: count(0)?,
            confirmations: count(1)?,
            tracked: count(2)?,
            checkpoints: None,
        })
    }

    async fn prune_settled(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let tracked = sqlx::query("DELETE FROM tracked WHERE settled AND updated_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let confirmations =
            sqlx::query("DELETE FROM confirmations WHERE state != 'pending' AND expires_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        let intents =
            sqlx::query("DELETE FROM intents WHERE resolved_at IS NOT NULL AND resolved_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        let presses = sqlx::query("DELETE FROM presses WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let waits = sqlx::query("DELETE FROM waits WHERE closed_at IS NOT NULL AND closed_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(tracked + confirmations + intents + presses + waits)
    }

    async fn claim_press(&self, press: &Press) -> Result<Option<Press>, StoreError> {
        for _ in 0..RETRIES {
            // A racing insert of the same message waits for the first to commit (or
            // roll back), then does nothing: one winner.
            let inserted = sqlx::query(
                "INSERT INTO presses (message, user_id, user_name, command, at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message) DO NOTHING",
            )
            .bind(&press.message)
            .bind(&press.user_id)
            .bind(&press.user_name)
            .bind(&press.command)
            .bind(press.at)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(None);
            }
            let row = sqlx::query("SELECT * FROM presses WHERE message = $1")
                .bind(&press.message)
                .fetch_optional(&self.pool)
                .await?;
            // Released in between: this press may be the first now.
            let Some(row) = row else {
                continue;
            };
            return Ok(Some(Press {
                message: row.get("message"),
                user_id: row.get("user_id"),
                user_name: row.get("user_name"),
                command: row.get("command"),
                at: row.try_get("at")?,
            }));
        }
        Err(StoreError(format!(
            "press {}: still contended after {RETRIES} attempts",
            press.message
        )))
    }

    async fn release_press(&self, press: &Press) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM presses WHERE message = $1 AND user_id = $2 AND at = $3")
            .bind(&press.message)
            .bind(&press.user_id)
            .bind(press.at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        // The insert waits for a racing one to commit, then does nothing; the SELECT,
        // a new statement, sees whichever value was committed first.
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?
            .get("value"))
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

const INSERT_TRACKED: &str =
    "INSERT INTO tracked (deployment_id, repository, request_id, settled, data, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repository, deployment_id) DO NOTHING";
const PUT_TRACKED: &str =
    "INSERT INTO tracked (deployment_id, repository, request_id, settled, data, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (repository, deployment_id) DO UPDATE SET
       request_id = excluded.request_id, settled = excluded.settled,
       data = excluded.data, updated_at = excluded.updated_at";

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `INSERT_TRACKED` or `PUT_TRACKED` with every column bound.
fn tracked_query<'q>(
    sql: &'static str,
    t: &'q Tracked,
    now: DateTime<Utc>,
) -> Result<PgQuery<'q>, StoreError> {
    Ok(sqlx::query(sql)
        .bind(t.deployment_id.0 as i64)
        .bind(repo_key(&t.repository))
        .bind(&t.request_id)
        .bind(t.is_settled())
        .bind(serde_json::to_string(t)?)
        .bind(now))
}

macro_rules! insert_lock_sql {
    () => {
        "INSERT INTO locks (app, environment, holder_id, holder_name, reason, created_at, expires_at, warned, conversation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8)"
    };
}
/// A new lock, when there is none.
const INSERT_LOCK: &str = insert_lock_sql!();
/// A new lock, or its holder renewing it; anyone else's insert changes nothing.
const TAKE_LOCK: &str = concat!(
    insert_lock_sql!(),
    " ON CONFLICT (app, environment) DO UPDATE SET
       reason = excluded.reason, expires_at = excluded.expires_at, warned = FALSE,
       conversation = excluded.conversation
     WHERE locks.holder_id = excluded.holder_id"
);

/// One of the lock inserts with every column bound.
fn insert_lock<'q>(sql: &'static str, lock: &'q Lock) -> Result<PgQuery<'q>, StoreError> {
    Ok(sqlx::query(sql)
        .bind(&lock.app)
        .bind(&lock.environment)
        .bind(&lock.holder_id)
        .bind(&lock.holder_name)
        .bind(&lock.reason)
        .bind(lock.created_at)
        .bind(lock.expires_at)
        .bind(serde_json::to_string(&lock.conversation)?))
}

/// A freeze's app or environment as stored: `''` for every one.
fn scope(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// A freeze, or a replacement of the one on its scope (racing freezers: the last wins).
const INSERT_FREEZE: &str =
    "INSERT INTO freezes (app, environment, holder_id, holder_name, reason, created_at, expires_at, conversation)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (app, environment) DO UPDATE SET
       holder_id = excluded.holder_id, holder_name = excluded.holder_name,
       reason = excluded.reason, created_at = excluded.created_at,
       expires_at = excluded.expires_at, conversation = excluded.conversation";

fn freeze_from(row: &PgRow) -> Result<Freeze, StoreError> {
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Freeze {
        app: some(row.get("app")),
        environment: some(row.get("environment")),
        holder_id: row.get("holder_id"),
        holder_name: row.get("holder_name"),
        reason: row.get("reason"),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
    })
}

pub(super) fn lock_from(row: &PgRow) -> Result<Lock, StoreError> {
    Ok(Lock {
        app: row.get("app"),
        environment: row.get("environment"),
        holder_id: row.get("holder_id"),
        holder_name: row.get("holder_name"),
        reason: row.get("reason"),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        warned: row.try_get("warned")?,
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
    })
}

fn confirmation_from(row: &PgRow) -> Result<Confirmation, StoreError> {
    Ok(Confirmation {
        id: row.get("id"),
        requester_id: row.get("requester_id"),
        requester_name: row.get("requester_name"),
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
        command: row.get("command"),
        summary: row.get("summary"),
        message_id: row.get("message_id"),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        state: ConfirmationState::parse(row.get::<&str, _>("state")),
        expected_live: row
            .get::<Option<i64>, _>("expected_live")
            .map(|id| id as u64),
        expected_target: row.get("expected_target"),
    })
}

/// A wait as stored: its JSON, with the columns that change after it was recorded.
fn wait_from(r: &sqlx::postgres::PgRow) -> Result<Wait, StoreError> {
    let mut w: Wait = serde_json::from_str(r.get::<&str, _>("data"))?;
    w.message_id = r.get("message_id");
    w.pokes = r.get::<i64, _>("pokes") as u64;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("postgres://bot:s3cret@db.example:5432/deploybot?sslmode=require"),
            "postgres://bot:***@db.example:5432/deploybot?sslmode=require"
        );
        assert_eq!(
            redacted("postgresql://bot@db/deploybot"),
            "postgresql://bot@db/deploybot"
        );
        assert_eq!(redacted("postgres://db/x"), "postgres://db/x");
        assert_eq!(redacted("sqlite://deploybot.db"), "sqlite://deploybot.db");
        // An `@` in the password (percent-encoding forgotten) is still hidden.
        assert_eq!(redacted("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }

    #[tokio::test]
    async fn an_unreachable_server_says_what_to_check() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://bot:hunter2@127.0.0.1:{port}/deploybot");
        let err = PostgresStore::open(&url, 2).await.err().expect("no server");
        assert!(err.0.contains("check the host and port"), "{err}");
        assert!(!err.0.contains("hunter2"), "{err}");
    }
}
