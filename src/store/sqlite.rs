//! [`Store`] on SQLite (sqlx), with migrations embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use super::{Store, StoreError, Tracked};
use crate::model::DeploymentId;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://deploybot.db`, `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError(format!("storage.url `{url}`: {e}")))?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // WAL lets readers and the writer work at once; a memory database has one
        // connection, or each connection would see its own empty database.
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .connect_with(options)
            .await
            .map_err(|e| StoreError(format!("cannot open {url}: {e}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError(format!("cannot migrate {url}: {e}")))?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn ts(t: DateTime<Utc>) -> String {
    // Fixed width, so text order is time order.
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_tracked(&self, t: &Tracked) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO tracked (deployment_id, repository, settled, data, updated_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (deployment_id) DO NOTHING",
        )
        .bind(t.deployment_id.0 as i64)
        .bind(t.repository.to_string())
        .bind(t.is_settled())
        .bind(serde_json::to_string(t)?)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_tracked(&self, t: &Tracked) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tracked (deployment_id, repository, settled, data, updated_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (deployment_id) DO UPDATE SET
               settled = excluded.settled, data = excluded.data, updated_at = excluded.updated_at",
        )
        .bind(t.deployment_id.0 as i64)
        .bind(t.repository.to_string())
        .bind(t.is_settled())
        .bind(serde_json::to_string(t)?)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tracked(&self, id: DeploymentId) -> Result<Option<Tracked>, StoreError> {
        let row = sqlx::query("SELECT data FROM tracked WHERE deployment_id = ?")
            .bind(id.0 as i64)
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

    async fn first_delivery(
        &self,
        id: &str,
        at: DateTime<Utc>,
        keep: u32,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO deliveries (id, received_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(ts(at))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            // Bounded: drop the oldest beyond `keep`. Cheap with the index.
            sqlx::query(
                "DELETE FROM deliveries WHERE id IN (
                   SELECT id FROM deliveries ORDER BY received_at DESC LIMIT -1 OFFSET ?)",
            )
            .bind(keep as i64)
            .execute(&self.pool)
            .await?;
        }
        Ok(inserted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Conversation;
    use crate::model::{DeploymentState, RepoName};

    fn tracked(id: u64) -> Tracked {
        Tracked {
            deployment_id: DeploymentId(id),
            repository: RepoName::parse("acme/api").unwrap(),
            app: Some("api".into()),
            environment: "staging".into(),
            git_ref: "topic".into(),
            sha: "a".repeat(40),
            task: "deploy".into(),
            conversation: Conversation {
                adapter: "shell".into(),
                channel: "deploys".into(),
                channel_name: Some("deploys".into()),
                thread: None,
                interaction: None,
            },
            message_id: Some("m1".into()),
            requester: Some(("alice".into(), "alice".into())),
            creator: None,
            html_url: None,
            hosts: vec![],
            reason: None,
            forced: false,
            notes: vec![],
            created_at: Utc::now(),
            state: DeploymentState::Created,
            status_id: None,
            status_description: None,
            log_url: None,
            environment_url: None,
            finished_at: None,
            announced: false,
            final_rendered: false,
            warned_no_status: false,
            warned_stuck: false,
            etag: None,
        }
    }

    #[tokio::test]
    async fn tracked_deployments_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bot.db").display());
        {
            let store = SqliteStore::open(&url).await.unwrap();
            assert!(store.insert_tracked(&tracked(1)).await.unwrap());
            assert!(
                !store.insert_tracked(&tracked(1)).await.unwrap(),
                "insert never overwrites"
            );
            let mut done = tracked(2);
            done.state = DeploymentState::Success;
            done.final_rendered = true;
            store.put_tracked(&done).await.unwrap();
        }
        let store = SqliteStore::open(&url).await.unwrap();
        let unfinished = store.unfinished().await.unwrap();
        assert_eq!(unfinished, vec![tracked_like(&unfinished[0], 1)]);
        assert_eq!(
            store.tracked(DeploymentId(2)).await.unwrap().unwrap().state,
            DeploymentState::Success
        );
        assert_eq!(store.tracked(DeploymentId(3)).await.unwrap(), None);
    }

    fn tracked_like(t: &Tracked, id: u64) -> Tracked {
        let mut expected = tracked(id);
        expected.created_at = t.created_at;
        expected
    }

    #[tokio::test]
    async fn deliveries_are_remembered_and_bounded() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let t0 = Utc::now();
        assert!(store.first_delivery("a", t0, 2).await.unwrap());
        assert!(!store.first_delivery("a", t0, 2).await.unwrap());
        store
            .first_delivery("b", t0 + chrono::Duration::seconds(1), 2)
            .await
            .unwrap();
        store
            .first_delivery("c", t0 + chrono::Duration::seconds(2), 2)
            .await
            .unwrap();
        // `a` was the oldest beyond the bound of 2: forgotten.
        assert!(store
            .first_delivery("a", t0 + chrono::Duration::seconds(3), 2)
            .await
            .unwrap());
        assert!(!store.first_delivery("c", t0, 2).await.unwrap());
    }
}
