//! [`Store`] on SQLite (sqlx), with migrations embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::sqlite_writer::{Writer, RESTART_PAGES};
use super::{
    Arrival, AuditEntry, Confirmation, ConfirmationState, Freeze, Gauges, Intent, IntentResolution,
    Lock, LockTaken, Press, Store, StoreError, Tracked, Unconfirmable, Write, Written,
    GENERATED_KEY,
};
use super::{Wait, WaitResolution};
use crate::model::{DeploymentId, RepoName};

/// How long a statement waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT_SECS: u64 = 5;
const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";

pub struct SqliteStore {
    pool: SqlitePool,
    /// The group commit's connection, on its own thread.
    writer: Writer,
    /// Where a `sqlite::memory:` store keeps its file (removed on drop).
    _scratch: Option<tempfile::TempDir>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://deploybot.db`, `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        Self::open_with(url, RESTART_PAGES).await
    }

    /// [`SqliteStore::open`], with the WAL size (pages) past which a checkpoint waits
    /// for the writer (tests make it small).
    async fn open_with(url: &str, restart_pages: i64) -> Result<SqliteStore, StoreError> {
        // A memory database is private to one connection, and the group commit has a
        // connection of its own: "memory" is a file in a temporary folder instead,
        // removed when the store is dropped (nothing is kept, as promised).
        let scratch = if url.contains(":memory:") {
            Some(
                tempfile::Builder::new()
                    .prefix("deploybot-memory-")
                    .tempdir()
                    .map_err(|e| {
                        StoreError(format!("cannot make a temporary folder for {url}: {e}"))
                    })?,
            )
        } else {
            None
        };
        let options = match &scratch {
            Some(dir) => SqliteConnectOptions::new().filename(dir.path().join("deploybot.db")),
            None => SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError(format!("storage.url `{url}`: {e}")))?,
        };
        // WAL lets readers and the writer work at once. (In WAL mode, synchronous =
        // NORMAL cannot corrupt the database; a power cut may lose the last
        // transactions, which a restart's catch-up re-reads from GitHub.)
        let options = options
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(BUSY_TIMEOUT_SECS))
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        // Two processes starting at once on a fresh file would both try to create the
        // tables: migrations run under an exclusive lock on a file beside the database.
        let guard = migration_lock(options.get_filename()).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError(format!("cannot open {url}: {e}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError(format!("cannot migrate {url}: {e}")))?;
        drop(guard);
        let writer = Writer::open(
            options.get_filename(),
            Duration::from_secs(BUSY_TIMEOUT_SECS),
            restart_pages,
        )?;
        Ok(SqliteStore {
            pool,
            writer,
            _scratch: scratch,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// An exclusive lock on `DB.migrate-lock`, held while migrations run (released when
/// the file handle is dropped, or when the process dies).
async fn migration_lock(db: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".migrate-lock");
    let path = std::path::PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| StoreError(format!("cannot lock {}: {e}", path.display())))?;
        Ok(file)
    })
    .await
    .map_err(|e| StoreError(format!("migration lock: {e}")))?
}

use super::repo_key;

pub(super) fn ts(t: DateTime<Utc>) -> String {
    // Fixed width, so text order is time order: `%Y-%m-%dT%H:%M:%S%.6fZ`, written
    // without parsing a format string (the writer thread stamps every commit).
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_tracked(&self, t: &Tracked) -> Result<bool, StoreError> {
        let done = tracked_query(INSERT_TRACKED, t, &ts(Utc::now()))?
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_tracked(&self, t: &Tracked) -> Result<(), StoreError> {
        tracked_query(PUT_TRACKED, t, &ts(Utc::now()))?
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
            sqlx::query("SELECT data FROM tracked WHERE repository = ? AND deployment_id = ?")
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
            "SELECT data FROM tracked WHERE repository = ? AND request_id = ?
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
        let rows = sqlx::query("SELECT data FROM tracked WHERE settled = 0 ORDER BY deployment_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(r.get::<&str, _>("data"))?))
            .collect()
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Vec<Written>, StoreError> {
        self.writer.write(batch).await
    }

    async fn inbox(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Arrival>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, event, received_at FROM inbox WHERE received_at < ? ORDER BY rowid LIMIT ?",
        )
        .bind(ts(before))
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
                    at: parse_ts(r.get::<&str, _>("received_at"))?,
                })
            })
            .collect()
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM deliveries WHERE received_at < ?")
            .bind(ts(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn take_lock(&self, lock: &Lock, now: DateTime<Utc>) -> Result<LockTaken, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM locks WHERE app = ? AND environment = ? AND expires_at <= ?")
            .bind(&lock.app)
            .bind(&lock.environment)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        let inserted = insert_lock(TAKE_LOCK, lock)?
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let result = if inserted == 1 {
            LockTaken::Taken
        } else {
            let row = sqlx::query("SELECT * FROM locks WHERE app = ? AND environment = ?")
                .bind(&lock.app)
                .bind(&lock.environment)
                .fetch_one(&mut *tx)
                .await?;
            LockTaken::HeldBy(Box::new(lock_from(&row)?))
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn replace_lock(
        &self,
        lock: &Lock,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let previous =
            sqlx::query("DELETE FROM locks WHERE app = ? AND environment = ? RETURNING *")
                .bind(&lock.app)
                .bind(&lock.environment)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| lock_from(&row))
                .transpose()?
                .filter(|l| l.expires_at > now);
        insert_lock(INSERT_LOCK, lock)?.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(previous)
    }

    async fn remove_lock(
        &self,
        app: &str,
        environment: &str,
        holder_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Lock>, StoreError> {
        let removed = sqlx::query(
            "DELETE FROM locks WHERE app = ? AND environment = ? AND holder_id = ? RETURNING *",
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
        sqlx::query("SELECT * FROM locks WHERE app = ? AND environment = ? AND expires_at > ?")
            .bind(app)
            .bind(environment)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?
            .map(|row| lock_from(&row))
            .transpose()
    }

    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<Lock>, StoreError> {
        sqlx::query("SELECT * FROM locks WHERE expires_at > ? ORDER BY created_at")
            .bind(ts(now))
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
            "UPDATE locks SET warned = 1 WHERE warned = 0 AND expires_at > ? AND expires_at <= ? RETURNING *",
        )
        .bind(ts(now))
        .bind(ts(before))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(lock_from)
        .collect()
    }

    async fn expire_locks(&self, now: DateTime<Utc>) -> Result<Vec<Lock>, StoreError> {
        sqlx::query("DELETE FROM locks WHERE expires_at <= ? RETURNING *")
            .bind(ts(now))
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
            sqlx::query("DELETE FROM freezes WHERE app = ? AND environment = ? RETURNING *")
                .bind(scope(&freeze.app))
                .bind(scope(&freeze.environment))
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| freeze_from(&row))
                .transpose()?
                .filter(|f| f.active(now));
        sqlx::query(INSERT_FREEZE)
            .bind(scope(&freeze.app))
            .bind(scope(&freeze.environment))
            .bind(&freeze.holder_id)
            .bind(&freeze.holder_name)
            .bind(&freeze.reason)
            .bind(ts(freeze.created_at))
            .bind(freeze.expires_at.map(ts))
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
            sqlx::query("DELETE FROM freezes WHERE app = ? AND environment = ? RETURNING *")
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
            "SELECT * FROM freezes WHERE expires_at IS NULL OR expires_at > ? ORDER BY created_at",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(freeze_from).collect()
    }

    async fn add_confirmation(&self, c: &Confirmation) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO confirmations (id, requester_id, requester_name, channel, conversation, command, summary, message_id, created_at, expires_at, state, expected_live, expected_target)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.requester_id)
        .bind(&c.requester_name)
        .bind(&c.conversation.channel)
        .bind(serde_json::to_string(&c.conversation)?)
        .bind(&c.command)
        .bind(&c.summary)
        .bind(&c.message_id)
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .bind(c.state.as_str())
        .bind(c.expected_live.map(|id| id as i64))
        .bind(&c.expected_target)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_confirmation_message(&self, id: &str, message_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE confirmations SET message_id = ? WHERE id = ?")
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
        // The state check in the WHERE clause is what makes a confirmation single-use.
        let closed = sqlx::query(
            "UPDATE confirmations SET state = ?
             WHERE id = ? AND requester_id = ? AND state = 'pending' AND expires_at > ?
             RETURNING *",
        )
        .bind(to.as_str())
        .bind(id)
        .bind(user_id)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = closed {
            return Ok(Ok(confirmation_from(&row)?));
        }
        let row = sqlx::query("SELECT * FROM confirmations WHERE id = ?")
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
            "SELECT * FROM confirmations WHERE channel = ? AND state = 'pending' AND expires_at > ?
             ORDER BY created_at DESC",
        )
        .bind(channel)
        .bind(ts(now))
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
            "SELECT * FROM confirmations WHERE channel = ? AND requester_id = ?
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
            "UPDATE confirmations SET state = 'expired' WHERE state = 'pending' AND expires_at <= ? RETURNING *",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(confirmation_from)
        .collect()
    }

    async fn add_intent(&self, intent: &Intent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO intents (request_id, data, created_at) VALUES (?, ?, ?)")
            .bind(&intent.request_id)
            .bind(serde_json::to_string(intent)?)
            .bind(ts(intent.created_at))
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
        // `resolved_at IS NULL` in the WHERE clause: of two closers, one wins.
        let done = sqlx::query(
            "UPDATE intents SET resolved_at = ?, resolution = ?, deployment_id = ?
             WHERE request_id = ? AND resolved_at IS NULL",
        )
        .bind(ts(at))
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
            "INSERT INTO waits (id, data, app, environment, repository, sha, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&w.id)
        .bind(serde_json::to_string(w)?)
        .bind(&w.app)
        .bind(&w.environment)
        .bind(w.repository.lowercase())
        .bind(&w.sha)
        .bind(ts(w.created_at))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let other = sqlx::query("SELECT data, message_id, pokes FROM waits WHERE app = ? AND environment = ? AND closed_at IS NULL")
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
        sqlx::query("UPDATE waits SET message_id = ? WHERE id = ?")
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
            "SELECT COUNT(*) FROM waits WHERE repository = ? AND sha = ? AND closed_at IS NULL",
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
             WHERE repository = ? AND sha = ? AND closed_at IS NULL",
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
        // `closed_at IS NULL` in the WHERE clause: of two closers, one wins.
        let done = sqlx::query(
            "UPDATE waits SET closed_at = ?, resolution = ? WHERE id = ? AND closed_at IS NULL",
        )
        .bind(ts(at))
        .bind(resolution.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, adapter, channel, user_id, user_name, text, command, app, environment, decision, rule, deployment_id, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(ts(e.at))
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
             WHERE (?1 IS NULL OR app = ?1) AND (?2 IS NULL OR environment = ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(app)
        .bind(environment)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: parse_ts(r.get::<&str, _>("at"))?,
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
        // A write lock, taken and given back at once: proves the file is there,
        // writable and not held by another process, without changing anything. The
        // busy timeout is short here, so a held lock is reported instead of waited out.
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA busy_timeout = 500")
            .execute(&mut *conn)
            .await?;
        let began = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await;
        let ended = match &began {
            Ok(_) => sqlx::query("ROLLBACK").execute(&mut *conn).await.map(drop),
            Err(_) => Ok(()),
        };
        let restored = sqlx::query(BUSY_TIMEOUT).execute(&mut *conn).await;
        if ended.is_err() || restored.is_err() {
            // Never hand back a connection in an unknown state.
            conn.close_on_drop();
        }
        began?;
        ended?;
        Ok(())
    }

    async fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges, StoreError> {
        let now = ts(now);
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM locks WHERE expires_at > ?1), \
                    (SELECT COUNT(*) FROM confirmations WHERE state = 'pending' AND expires_at > ?1), \
                    (SELECT COUNT(*) FROM tracked WHERE settled = 0)",
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
            checkpoints: Some(self.writer.checkpoints()),
        })
    }

    async fn prune_settled(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let tracked = sqlx::query("DELETE FROM tracked WHERE settled = 1 AND updated_at < ?")
            .bind(ts(before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let confirmations =
            sqlx::query("DELETE FROM confirmations WHERE state != 'pending' AND expires_at < ?")
                .bind(ts(before))
                .execute(&self.pool)
                .await?
                .rows_affected();
        let intents =
            sqlx::query("DELETE FROM intents WHERE resolved_at IS NOT NULL AND resolved_at < ?")
                .bind(ts(before))
                .execute(&self.pool)
                .await?
                .rows_affected();
        let presses = sqlx::query("DELETE FROM presses WHERE at < ?")
            .bind(ts(before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let waits = sqlx::query("DELETE FROM waits WHERE closed_at IS NOT NULL AND closed_at < ?")
            .bind(ts(before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(tracked + confirmations + intents + presses + waits)
    }

    async fn claim_press(&self, press: &Press) -> Result<Option<Press>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO presses (message, user_id, user_name, command, at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (message) DO NOTHING",
        )
        .bind(&press.message)
        .bind(&press.user_id)
        .bind(&press.user_name)
        .bind(&press.command)
        .bind(ts(press.at))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM presses WHERE message = ?")
            .bind(&press.message)
            .fetch_optional(&self.pool)
            .await?;
        // Released in between: this press is the first now.
        let Some(row) = row else {
            return self.claim_press(press).await;
        };
        Ok(Some(Press {
            message: row.get("message"),
            user_id: row.get("user_id"),
            user_name: row.get("user_name"),
            command: row.get("command"),
            at: parse_ts(&row.get::<String, _>("at"))?,
        }))
    }

    async fn release_press(&self, press: &Press) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM presses WHERE message = ? AND user_id = ? AND at = ?")
            .bind(&press.message)
            .bind(&press.user_id)
            .bind(ts(press.at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?
            .get("value"))
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM audit WHERE at < ?")
            .bind(ts(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

pub(super) const INSERT_TRACKED: &str =
    "INSERT INTO tracked (deployment_id, repository, request_id, settled, data, updated_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repository, deployment_id) DO NOTHING";
pub(super) const PUT_TRACKED: &str =
    "INSERT INTO tracked (deployment_id, repository, request_id, settled, data, updated_at)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (repository, deployment_id) DO UPDATE SET
       request_id = excluded.request_id, settled = excluded.settled,
       data = excluded.data, updated_at = excluded.updated_at";

/// `INSERT_TRACKED` or `PUT_TRACKED` with every column bound.
fn tracked_query<'q>(
    sql: &'static str,
    t: &'q Tracked,
    now: &str,
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>, StoreError> {
    Ok(sqlx::query(sql)
        .bind(t.deployment_id.0 as i64)
        .bind(repo_key(&t.repository))
        .bind(&t.request_id)
        .bind(t.is_settled())
        .bind(serde_json::to_string(t)?)
        .bind(now.to_string()))
}

macro_rules! insert_lock_sql {
    () => {
        "INSERT INTO locks (app, environment, holder_id, holder_name, reason, created_at, expires_at, warned, conversation)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)"
    };
}
/// A new lock, when there is none.
const INSERT_LOCK: &str = insert_lock_sql!();
/// A new lock, or its holder renewing it; anyone else's insert changes nothing.
const TAKE_LOCK: &str = concat!(
    insert_lock_sql!(),
    " ON CONFLICT (app, environment) DO UPDATE SET
       reason = excluded.reason, expires_at = excluded.expires_at, warned = 0,
       conversation = excluded.conversation
     WHERE locks.holder_id = excluded.holder_id"
);

/// One of the lock inserts with every column bound.
fn insert_lock<'q>(
    sql: &'static str,
    lock: &'q Lock,
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>, StoreError> {
    Ok(sqlx::query(sql)
        .bind(&lock.app)
        .bind(&lock.environment)
        .bind(&lock.holder_id)
        .bind(&lock.holder_name)
        .bind(&lock.reason)
        .bind(ts(lock.created_at))
        .bind(ts(lock.expires_at))
        .bind(serde_json::to_string(&lock.conversation)?))
}

/// A freeze's app or environment as stored: `''` for every one.
fn scope(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// A freeze, or a replacement of the one on its scope (racing freezers: the last wins).
const INSERT_FREEZE: &str =
    "INSERT INTO freezes (app, environment, holder_id, holder_name, reason, created_at, expires_at, conversation)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (app, environment) DO UPDATE SET
       holder_id = excluded.holder_id, holder_name = excluded.holder_name,
       reason = excluded.reason, created_at = excluded.created_at,
       expires_at = excluded.expires_at, conversation = excluded.conversation";

fn freeze_from(row: &sqlx::sqlite::SqliteRow) -> Result<Freeze, StoreError> {
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Freeze {
        app: some(row.get("app")),
        environment: some(row.get("environment")),
        holder_id: row.get("holder_id"),
        holder_name: row.get("holder_name"),
        reason: row.get("reason"),
        created_at: parse_ts(row.get::<&str, _>("created_at"))?,
        expires_at: row
            .get::<Option<&str>, _>("expires_at")
            .map(parse_ts)
            .transpose()?,
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
    })
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError(format!("corrupt timestamp `{s}`: {e}")))
}

pub(super) fn lock_from(row: &sqlx::sqlite::SqliteRow) -> Result<Lock, StoreError> {
    Ok(Lock {
        app: row.get("app"),
        environment: row.get("environment"),
        holder_id: row.get("holder_id"),
        holder_name: row.get("holder_name"),
        reason: row.get("reason"),
        created_at: parse_ts(row.get::<&str, _>("created_at"))?,
        expires_at: parse_ts(row.get::<&str, _>("expires_at"))?,
        warned: row.get::<i64, _>("warned") != 0,
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
    })
}

fn confirmation_from(row: &sqlx::sqlite::SqliteRow) -> Result<Confirmation, StoreError> {
    Ok(Confirmation {
        id: row.get("id"),
        requester_id: row.get("requester_id"),
        requester_name: row.get("requester_name"),
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
        command: row.get("command"),
        summary: row.get("summary"),
        message_id: row.get("message_id"),
        created_at: parse_ts(row.get::<&str, _>("created_at"))?,
        expires_at: parse_ts(row.get::<&str, _>("expires_at"))?,
        state: ConfirmationState::parse(row.get::<&str, _>("state")),
        expected_live: row
            .get::<Option<i64>, _>("expected_live")
            .map(|id| id as u64),
        expected_target: row.get("expected_target"),
    })
}

/// A wait as stored: its JSON, with the columns that change after it was recorded.
fn wait_from(r: &sqlx::sqlite::SqliteRow) -> Result<Wait, StoreError> {
    let mut w: Wait = serde_json::from_str(r.get::<&str, _>("data"))?;
    w.message_id = r.get("message_id");
    w.pokes = r.get::<i64, _>("pokes") as u64;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2,000 admitted deliveries of 4 KiB each, in one commit: ~2,200 WAL pages.
    fn burst(tag: &str) -> Vec<Write> {
        (0..2_000)
            .map(|i| {
                Write::Admit(Arrival {
                    key: format!("{tag}-{i}"),
                    delivery: Some(format!("{tag}-{i}")),
                    event: "x".repeat(4096),
                    at: Utc::now(),
                })
            })
            .collect()
    }

    /// Waits (bounded) until `n` checkpoints have copied the whole WAL.
    async fn caught_up(store: &SqliteStore, n: u64) {
        until(
            || store.writer.caught_up() >= n,
            || {
                format!(
                    "checkpoints that caught up: {} of {n}",
                    store.writer.caught_up()
                )
            },
        )
        .await
    }

    /// Waits (bounded) until `done()`; `what()` says what was missing if it never is.
    async fn until(done: impl Fn() -> bool, what: impl Fn() -> String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{}", what());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_holding_the_wal_delays_its_restart_but_never_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wal.db");
        let wal = dir.path().join("wal.db-wal");
        // Every burst is past this threshold: each round tries a restarting checkpoint.
        let store = SqliteStore::open_with(&format!("sqlite://{}", db.display()), 100)
            .await
            .unwrap();
        // A reader (a backup, `sqlite3` at a prompt) in the middle of a transaction:
        // no checkpoint can copy past what it sees, nor start the WAL over.
        let reader = rusqlite::Connection::open(&db).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 0);
        // Commits go on while it reads, each past the threshold, each followed by a
        // checkpoint round that gives up waiting for the reader (RESTART_WAIT) instead
        // of holding the writer.
        let mut wal_sizes = Vec::new();
        for (n, tag) in ["a", "b", "c"].into_iter().enumerate() {
            let written = store.write(burst(tag)).await.unwrap();
            assert!(written.iter().all(|w| *w == Written::Admitted), "{tag}");
            let n = n as u64 + 1;
            until(
                || store.writer.rounds() >= n,
                || format!("checkpoint rounds: {} of {n}", store.writer.rounds()),
            )
            .await;
            wal_sizes.push(std::fs::metadata(&wal).unwrap().len());
        }
        assert_eq!(store.writer.caught_up(), 0, "no checkpoint could catch up");
        // What `/metrics` shows: only partial rounds, and the WAL behind.
        let shown = store.gauges(Utc::now()).await.unwrap().checkpoints.unwrap();
        assert_eq!((shown.caught_up, shown.partial, shown.failed), (0, 3, 0));
        assert!(shown.pages_behind >= 3 * 2_000, "{shown:?}");
        assert!(
            wal_sizes.windows(2).all(|w| w[1] > w[0]),
            "the WAL could not start over, so it grew: {wal_sizes:?}"
        );
        // The reader still sees what it saw when it began.
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 0);
        // Once it leaves, the next round copies everything and the WAL starts over.
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
        store.write(burst("d")).await.unwrap();
        caught_up(&store, 1).await;
        let before = std::fs::metadata(&wal).unwrap().len();
        store.write(burst("e")).await.unwrap();
        caught_up(&store, 2).await;
        let shown = store.gauges(Utc::now()).await.unwrap().checkpoints.unwrap();
        assert_eq!((shown.caught_up, shown.pages_behind), (2, 0));
        assert_eq!(
            std::fs::metadata(&wal).unwrap().len(),
            before,
            "after a checkpoint that caught up, the next burst rewrote the WAL from its start"
        );
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 5 * 2_000, "nothing was lost on the way");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_in_the_background_and_starts_over_after_a_burst() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wal.db");
        let wal = dir.path().join("wal.db-wal");
        let store = SqliteStore::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let data = 2_000 * 4096;
        // The checkpointer copies the burst into the database file on its own (the
        // writer's connection never checkpoints: nothing else would).
        store.write(burst("a")).await.unwrap();
        caught_up(&store, 1).await;
        assert!(std::fs::metadata(&db).unwrap().len() >= data, "copied");
        let wal_after_one = std::fs::metadata(&wal).unwrap().len();
        assert!(wal_after_one >= data, "the burst went through the WAL");
        // That checkpoint caught up, so the next commit starts the WAL over instead of
        // appending to it: the file does not grow past one burst's size.
        store.write(burst("b")).await.unwrap();
        caught_up(&store, 2).await;
        assert!(std::fs::metadata(&db).unwrap().len() >= 2 * data, "copied");
        let wal_after_two = std::fs::metadata(&wal).unwrap().len();
        assert!(
            wal_after_two < wal_after_one + wal_after_one / 2,
            "the WAL grew from {wal_after_one} to {wal_after_two} bytes: it was not started over"
        );
        // Nothing was lost on the way: both bursts' ids are recorded.
        let again = store.write(vec![burst("a").remove(7), burst("b").remove(1999)]);
        assert_eq!(
            again.await.unwrap(),
            vec![Written::Duplicate, Written::Duplicate]
        );
    }

    #[test]
    fn timestamps_are_fixed_width_microseconds_in_utc() {
        for t in [
            "2026-12-04T03:17:32.123456789Z",
            "2026-01-02T00:00:00Z",
            "1999-12-31T23:59:59.000001Z",
        ] {
            let t = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            // What the rows written so far hold: text order is time order.
            assert_eq!(ts(t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            assert_eq!(ts(t).len(), 27);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_opening_a_fresh_database_at_once_both_succeed() {
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
            let (a, b) = tokio::join!(
                tokio::spawn({
                    let url = url.clone();
                    async move { SqliteStore::open(&url).await.map(|_| ()) }
                }),
                tokio::spawn(async move { SqliteStore::open(&url).await.map(|_| ()) })
            );
            a.unwrap()
                .unwrap_or_else(|e| panic!("round {round}, first: {e}"));
            b.unwrap()
                .unwrap_or_else(|e| panic!("round {round}, second: {e}"));
        }
    }
}
