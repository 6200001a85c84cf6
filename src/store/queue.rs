//! The queue per app and environment, lock reminders and automatic locks: the store's
//! side of `queue`, `dequeue`, `deploy … queue`, `concurrency`, `auto_lock` and
//! `lock_remind_after` (the flows are `src/flow/queue.rs` and `src/flow/dequeue.rs`).
//!
//! A supertrait of [`Store`](super::Store), implemented here for both backends (the
//! same SQL but for placeholders and timestamp types), so every rule is the
//! database's on both:
//!
//! * order: `position` is MAX + 1 taken in the insert itself, unique per (app,
//!   environment); the loser of a race retries and lands behind the winner;
//! * one open entry per person and queue, one turn per queue: partial unique indexes;
//! * a turn is given, used or lost once: conditional `UPDATE … RETURNING`;
//! * a reminder is sent once per interval: a conditional `UPDATE` of `reminded_at`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::postgres::PostgresStore;
use super::sqlite::ts;
use super::sqlite::SqliteStore;
use super::{Lock, StoreError};
use crate::chat::Conversation;

/// Attempts of a join that lost the race for its position.
const RETRIES: usize = 16;

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// In line.
    Waiting,
    /// First in line and the environment is theirs: reserved until `reserved_until`,
    /// or being deployed for them.
    Turn,
    /// They deployed (or their command was run) in their turn.
    Deployed,
    /// Their turn passed without a deploy.
    Lost,
    /// Their command was run for them and refused.
    Refused,
    /// They left the queue (`dequeue`).
    Left,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Turn => "turn",
            Self::Deployed => "deployed",
            Self::Lost => "lost",
            Self::Refused => "refused",
            Self::Left => "left",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "turn" => Self::Turn,
            "deployed" => Self::Deployed,
            "lost" => Self::Lost,
            "refused" => Self::Refused,
            "left" => Self::Left,
            _ => Self::Waiting,
        }
    }
}

/// Someone waiting for an app's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub app: String,
    pub environment: String,
    /// Assigned by the store on joining; grows per (app, environment), never reused
    /// while a lower entry is open. Ignored by [`QueueStore::join_queue`].
    pub position: i64,
    pub user_id: String,
    pub user_name: String,
    /// The roles seen when they joined: an automatic deploy is checked against them.
    pub roles: Vec<String>,
    /// The deploy to run in their turn, in canonical form (without `queue`).
    pub command: String,
    /// Where they joined: they are told there.
    pub conversation: Conversation,
    pub joined_at: DateTime<Utc>,
    pub state: QueueState,
    /// When they were told it is their turn.
    pub told_at: Option<DateTime<Utc>>,
    /// The end of their turn.
    pub reserved_until: Option<DateTime<Utc>>,
}

/// The answer to joining a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// A new entry (with its position).
    Joined(QueueEntry),
    /// They were in this queue already: their entry, unchanged.
    Already(QueueEntry),
}

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Adds `entry` at the end of its queue, unless its user has an open entry there.
    async fn join_queue(&self, entry: &QueueEntry) -> Result<Joined, StoreError>;
    /// Open entries (waiting, or with the turn), by app, environment and position;
    /// optionally of one app and/or environment.
    async fn queue(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Vec<QueueEntry>, StoreError>;
    /// Closes `user_id`'s open entry as left; returns it (now left) if there was one.
    async fn leave_queue(
        &self,
        app: &str,
        environment: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError>;
    /// Gives the turn to the first waiting entry, unless someone has it: at most one
    /// caller gets it, whatever the race.
    async fn take_turn(
        &self,
        app: &str,
        environment: &str,
        now: DateTime<Utc>,
        reserved_until: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError>;
    /// Ends `user_id`'s turn as `to`, once; returns the entry if it had the turn.
    async fn close_turn(
        &self,
        app: &str,
        environment: &str,
        user_id: &str,
        to: QueueState,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError>;
    /// Ends every turn reserved until `now` or before as lost, and returns them.
    async fn expire_turns(&self, now: DateTime<Utc>) -> Result<Vec<QueueEntry>, StoreError>;
    /// Deletes entries closed before `before`; returns how many. (Positions stay
    /// ordered: a new one is still above every entry left.)
    async fn prune_queue(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Marks an unexpired lock reminded at `now` if its holder was last reminded (or,
    /// never reminded, took it) at `due` or before; `true` for the one caller that
    /// did, so each interval reminds once.
    async fn remind_lock(
        &self,
        lock: &Lock,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Takes `lock` for `deployment` (`owner/name#id`) unless anyone holds an unexpired
    /// lock there (the holder's own lock is theirs to keep, not replaced).
    async fn take_auto_lock(
        &self,
        lock: &Lock,
        deployment: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Unexpired automatic locks, with their deployments.
    async fn auto_locks(&self, now: DateTime<Utc>) -> Result<Vec<(Lock, String)>, StoreError>;
    /// Makes the automatic lock of `deployment` expire at `until`, if later than that.
    async fn end_auto_lock(
        &self,
        app: &str,
        environment: &str,
        deployment: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn conversation_json(c: &Conversation) -> Result<String, StoreError> {
    // An interaction token expires within minutes: a queue outlives it.
    let c = Conversation {
        interaction: None,
        ..c.clone()
    };
    Ok(serde_json::to_string(&c)?)
}

// ---------------------------------------------------------------------------------
// SQLite

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError(format!("corrupt timestamp `{s}`: {e}")))
}

fn sqlite_entry(row: &sqlx::sqlite::SqliteRow) -> Result<QueueEntry, StoreError> {
    let opt = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        row.get::<Option<&str>, _>(name).map(parse_ts).transpose()
    };
    Ok(QueueEntry {
        app: row.get("app"),
        environment: row.get("environment"),
        position: row.get("position"),
        user_id: row.get("user_id"),
        user_name: row.get("user_name"),
        roles: serde_json::from_str(row.get::<&str, _>("roles"))?,
        command: row.get("command"),
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
        joined_at: parse_ts(row.get::<&str, _>("joined_at"))?,
        state: QueueState::parse(row.get::<&str, _>("state")),
        told_at: opt("told_at")?,
        reserved_until: opt("reserved_until")?,
    })
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn join_queue(&self, e: &QueueEntry) -> Result<Joined, StoreError> {
        let roles = serde_json::to_string(&e.roles)?;
        let conversation = conversation_json(&e.conversation)?;
        for _ in 0..RETRIES {
            let inserted = sqlx::query(
                "INSERT INTO queue (app, environment, position, user_id, user_name, roles, command, conversation, joined_at)
                 SELECT ?1, ?2, COALESCE(MAX(position), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8
                 FROM queue WHERE app = ?1 AND environment = ?2
                 RETURNING *",
            )
            .bind(&e.app)
            .bind(&e.environment)
            .bind(&e.user_id)
            .bind(&e.user_name)
            .bind(&roles)
            .bind(&e.command)
            .bind(&conversation)
            .bind(ts(e.joined_at))
            .fetch_one(self.pool())
            .await;
            match inserted {
                Ok(row) => return Ok(Joined::Joined(sqlite_entry(&row)?)),
                Err(err) if is_unique_violation(&err) => {
                    let open = sqlx::query(
                        "SELECT * FROM queue WHERE app = ? AND environment = ? AND user_id = ? AND state IN ('waiting', 'turn')",
                    )
                    .bind(&e.app)
                    .bind(&e.environment)
                    .bind(&e.user_id)
                    .fetch_optional(self.pool())
                    .await?;
                    if let Some(row) = open {
                        return Ok(Joined::Already(sqlite_entry(&row)?));
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError(format!(
            "queue {}/{}: still contended after {RETRIES} attempts",
            e.app, e.environment
        )))
    }

    async fn queue(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM queue WHERE state IN ('waiting', 'turn')
               AND (?1 IS NULL OR app = ?1) AND (?2 IS NULL OR environment = ?2)
             ORDER BY app, environment, position",
        )
        .bind(app)
        .bind(environment)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(sqlite_entry)
        .collect()
    }

    async fn leave_queue(
        &self,
        app: &str,
        environment: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        sqlx::query(
            "UPDATE queue SET state = 'left', closed_at = ?
             WHERE app = ? AND environment = ? AND user_id = ? AND state IN ('waiting', 'turn')
             RETURNING *",
        )
        .bind(ts(now))
        .bind(app)
        .bind(environment)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| sqlite_entry(&row))
        .transpose()
    }

    async fn take_turn(
        &self,
        app: &str,
        environment: &str,
        now: DateTime<Utc>,
        reserved_until: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        let taken = sqlx::query(
            "UPDATE queue SET state = 'turn', told_at = ?1, reserved_until = ?2
             WHERE app = ?3 AND environment = ?4 AND state = 'waiting'
               AND position = (SELECT MIN(position) FROM queue
                               WHERE app = ?3 AND environment = ?4 AND state = 'waiting')
               AND NOT EXISTS (SELECT 1 FROM queue
                               WHERE app = ?3 AND environment = ?4 AND state = 'turn')
             RETURNING *",
        )
        .bind(ts(now))
        .bind(ts(reserved_until))
        .bind(app)
        .bind(environment)
        .fetch_optional(self.pool())
        .await;
        match taken {
            Ok(row) => row.map(|row| sqlite_entry(&row)).transpose(),
            // Someone else's turn began meanwhile (the one-turn index).
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn close_turn(
        &self,
        app: &str,
        environment: &str,
        user_id: &str,
        to: QueueState,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        sqlx::query(
            "UPDATE queue SET state = ?, closed_at = ?
             WHERE app = ? AND environment = ? AND user_id = ? AND state = 'turn'
             RETURNING *",
        )
        .bind(to.as_str())
        .bind(ts(now))
        .bind(app)
        .bind(environment)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| sqlite_entry(&row))
        .transpose()
    }

    async fn expire_turns(&self, now: DateTime<Utc>) -> Result<Vec<QueueEntry>, StoreError> {
        sqlx::query(
            "UPDATE queue SET state = 'lost', closed_at = ?1
             WHERE state = 'turn' AND reserved_until <= ?1
             RETURNING *",
        )
        .bind(ts(now))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(sqlite_entry)
        .collect()
    }

    async fn prune_queue(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM queue WHERE closed_at IS NOT NULL AND closed_at < ?")
                .bind(ts(before))
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    async fn remind_lock(
        &self,
        lock: &Lock,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE locks SET reminded_at = ?1
             WHERE app = ?2 AND environment = ?3 AND holder_id = ?4 AND expires_at > ?1
               AND COALESCE(reminded_at, created_at) <= ?5",
        )
        .bind(ts(now))
        .bind(&lock.app)
        .bind(&lock.environment)
        .bind(&lock.holder_id)
        .bind(ts(due))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_auto_lock(
        &self,
        lock: &Lock,
        deployment: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM locks WHERE app = ? AND environment = ? AND expires_at <= ?")
            .bind(&lock.app)
            .bind(&lock.environment)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO locks (app, environment, holder_id, holder_name, reason, created_at, expires_at, conversation, deployment)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app, environment) DO NOTHING",
        )
        .bind(&lock.app)
        .bind(&lock.environment)
        .bind(&lock.holder_id)
        .bind(&lock.holder_name)
        .bind(&lock.reason)
        .bind(ts(lock.created_at))
        .bind(ts(lock.expires_at))
        .bind(conversation_json(&lock.conversation)?)
        .bind(deployment)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    async fn auto_locks(&self, now: DateTime<Utc>) -> Result<Vec<(Lock, String)>, StoreError> {
        sqlx::query("SELECT * FROM locks WHERE deployment IS NOT NULL AND expires_at > ?")
            .bind(ts(now))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok((
                    super::sqlite::lock_from(row)?,
                    row.get::<String, _>("deployment"),
                ))
            })
            .collect()
    }

    async fn end_auto_lock(
        &self,
        app: &str,
        environment: &str,
        deployment: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE locks SET expires_at = ?1
             WHERE app = ?2 AND environment = ?3 AND deployment = ?4 AND expires_at > ?1",
        )
        .bind(ts(until))
        .bind(app)
        .bind(environment)
        .bind(deployment)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

// ---------------------------------------------------------------------------------
// PostgreSQL

fn pg_entry(row: &sqlx::postgres::PgRow) -> Result<QueueEntry, StoreError> {
    Ok(QueueEntry {
        app: row.get("app"),
        environment: row.get("environment"),
        position: row.get("position"),
        user_id: row.get("user_id"),
        user_name: row.get("user_name"),
        roles: serde_json::from_str(row.get::<&str, _>("roles"))?,
        command: row.get("command"),
        conversation: serde_json::from_str(row.get::<&str, _>("conversation"))?,
        joined_at: row.try_get("joined_at")?,
        state: QueueState::parse(row.get::<&str, _>("state")),
        told_at: row.try_get("told_at")?,
        reserved_until: row.try_get("reserved_until")?,
    })
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn join_queue(&self, e: &QueueEntry) -> Result<Joined, StoreError> {
        let roles = serde_json::to_string(&e.roles)?;
        let conversation = conversation_json(&e.conversation)?;
        for _ in 0..RETRIES {
            // A racing join that took the same position first makes this one wait for
            // its commit, then fail on the key: the next attempt lands behind it.
            let inserted = sqlx::query(
                "INSERT INTO queue (app, environment, position, user_id, user_name, roles, command, conversation, joined_at)
                 SELECT $1, $2, COALESCE(MAX(position), 0) + 1, $3, $4, $5, $6, $7, $8
                 FROM queue WHERE app = $1 AND environment = $2
                 RETURNING *",
            )
            .bind(&e.app)
            .bind(&e.environment)
            .bind(&e.user_id)
            .bind(&e.user_name)
            .bind(&roles)
            .bind(&e.command)
            .bind(&conversation)
            .bind(e.joined_at)
            .fetch_one(self.pool())
            .await;
            match inserted {
                Ok(row) => return Ok(Joined::Joined(pg_entry(&row)?)),
                Err(err) if is_unique_violation(&err) => {
                    let open = sqlx::query(
                        "SELECT * FROM queue WHERE app = $1 AND environment = $2 AND user_id = $3 AND state IN ('waiting', 'turn')",
                    )
                    .bind(&e.app)
                    .bind(&e.environment)
                    .bind(&e.user_id)
                    .fetch_optional(self.pool())
                    .await?;
                    if let Some(row) = open {
                        return Ok(Joined::Already(pg_entry(&row)?));
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError(format!(
            "queue {}/{}: still contended after {RETRIES} attempts",
            e.app, e.environment
        )))
    }

    async fn queue(
        &self,
        app: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM queue WHERE state IN ('waiting', 'turn')
               AND ($1::TEXT IS NULL OR app = $1) AND ($2::TEXT IS NULL OR environment = $2)
             ORDER BY app, environment, position",
        )
        .bind(app)
        .bind(environment)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(pg_entry)
        .collect()
    }

    async fn leave_queue(
        &self,
        app: &str,
        environment: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        sqlx::query(
            "UPDATE queue SET state = 'left', closed_at = $1
             WHERE app = $2 AND environment = $3 AND user_id = $4 AND state IN ('waiting', 'turn')
             RETURNING *",
        )
        .bind(now)
        .bind(app)
        .bind(environment)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| pg_entry(&row))
        .transpose()
    }

    async fn take_turn(
        &self,
        app: &str,
        environment: &str,
        now: DateTime<Utc>,
        reserved_until: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        // Racing takers pick the same first entry: the row lock makes the others
        // re-check `state = 'waiting'` after the winner commits, and find it taken.
        // One that picked another entry meanwhile fails on the one-turn index.
        let taken = sqlx::query(
            "UPDATE queue SET state = 'turn', told_at = $1, reserved_until = $2
             WHERE app = $3 AND environment = $4 AND state = 'waiting'
               AND position = (SELECT MIN(position) FROM queue
                               WHERE app = $3 AND environment = $4 AND state = 'waiting')
               AND NOT EXISTS (SELECT 1 FROM queue
                               WHERE app = $3 AND environment = $4 AND state = 'turn')
             RETURNING *",
        )
        .bind(now)
        .bind(reserved_until)
        .bind(app)
        .bind(environment)
        .fetch_optional(self.pool())
        .await;
        match taken {
            Ok(row) => row.map(|row| pg_entry(&row)).transpose(),
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn close_turn(
        &self,
        app: &str,
        environment: &str,
        user_id: &str,
        to: QueueState,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        sqlx::query(
            "UPDATE queue SET state = $1, closed_at = $2
             WHERE app = $3 AND environment = $4 AND user_id = $5 AND state = 'turn'
             RETURNING *",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(app)
        .bind(environment)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| pg_entry(&row))
        .transpose()
    }

    async fn expire_turns(&self, now: DateTime<Utc>) -> Result<Vec<QueueEntry>, StoreError> {
        sqlx::query(
            "UPDATE queue SET state = 'lost', closed_at = $1
             WHERE state = 'turn' AND reserved_until <= $1
             RETURNING *",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(pg_entry)
        .collect()
    }

    async fn prune_queue(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM queue WHERE closed_at IS NOT NULL AND closed_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    async fn remind_lock(
        &self,
        lock: &Lock,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE locks SET reminded_at = $1
             WHERE app = $2 AND environment = $3 AND holder_id = $4 AND expires_at > $1
               AND COALESCE(reminded_at, created_at) <= $5",
        )
        .bind(now)
        .bind(&lock.app)
        .bind(&lock.environment)
        .bind(&lock.holder_id)
        .bind(due)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_auto_lock(
        &self,
        lock: &Lock,
        deployment: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM locks WHERE app = $1 AND environment = $2 AND expires_at <= $3")
            .bind(&lock.app)
            .bind(&lock.environment)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO locks (app, environment, holder_id, holder_name, reason, created_at, expires_at, conversation, deployment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (app, environment) DO NOTHING",
        )
        .bind(&lock.app)
        .bind(&lock.environment)
        .bind(&lock.holder_id)
        .bind(&lock.holder_name)
        .bind(&lock.reason)
        .bind(lock.created_at)
        .bind(lock.expires_at)
        .bind(conversation_json(&lock.conversation)?)
        .bind(deployment)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    async fn auto_locks(&self, now: DateTime<Utc>) -> Result<Vec<(Lock, String)>, StoreError> {
        sqlx::query("SELECT * FROM locks WHERE deployment IS NOT NULL AND expires_at > $1")
            .bind(now)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok((
                    super::postgres::lock_from(row)?,
                    row.get::<String, _>("deployment"),
                ))
            })
            .collect()
    }

    async fn end_auto_lock(
        &self,
        app: &str,
        environment: &str,
        deployment: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE locks SET expires_at = $1
             WHERE app = $2 AND environment = $3 AND deployment = $4 AND expires_at > $1",
        )
        .bind(until)
        .bind(app)
        .bind(environment)
        .bind(deployment)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
